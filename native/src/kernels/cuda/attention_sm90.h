// Hopper (sm_90a) attention kernels on wgmma, internal to the CUDA backend (attention.cu dispatches
// to them; docs/CUDA.md "Kernels"). attention_sm90.cu is compiled only for sm_90a and only when the
// CUDA architectures include 90; CMake then defines FF_CUDA_HAVE_SM90A for framefleet_cuda and
// whatever links it (the tests call probeTile only then).
#pragma once
#include <cstdint>

struct CUstream_st;

namespace ff::cuda {

// Whether sageAttention and slaAttention's sparse branch run on the wgmma kernels below: where
// they apply (sm90::available) unless FF_CUDA_ATTN_IMPL=mma selects the mma.sync kernels of
// attention.cu (wgmma, or unset, picks them). Any other value than mma or wgmma throws.
// Defined in attention.cu, so it exists in builds without sm_90a (always false there).
bool sageUsesWgmma(int headDim);

}  // namespace ff::cuda

namespace ff::cuda::sm90 {

// Sage attention after prepareSage: q and k~ as INT8 with one scale per 64-token block, v and out
// bf16. Offsets in elements: element (head h, token n, channel d) of q or k is at
// ptr[h * head + n * tok + d], the same for v and out with their own strides.
struct SageArgs {
  const int8_t* q;
  const int8_t* k;
  const void* v;
  void* out;
  int64_t qHead, qTok, kHead, kTok, vHead, vTok, oHead, oTok;
  int heads, nQ, nK, headDim;
  const float* qScale;  // [heads, qBlocks], softmax scale * log2(e) folded in
  const float* kScale;  // [heads, kBlocks]
  int qBlocks, kBlocks;
  const int32_t* blocks = nullptr;  // SLA: [heads, qBlocks, kc] key blocks per 64-row query block; null = dense
  int kc = 0;
  // FP8 P.V scratch (FF_CUDA_WGMMA_PV=fp8): e4m3 v^T [heads, headDim, vtRow] with vtRow >= nK rounded
  // up to 128, and per-(head, channel) max |v| [heads, headDim] (float bits).
  uint8_t* vt8 = nullptr;
  int* vAmax = nullptr;
  int64_t vtRow = 0;
  float scaleLog2 = 0.0f;  // the bf16 Q.K^T kernel (flashAttentionWs): softmax scale * log2(e)
  bool accumulate = false;  // add O to the bf16 already in out (SLA's linear branch wrote it first)
  bool vtReady = false;     // vt8 and vAmax already hold the e4m3 V^T this call reads (see sparseVtBlockMajor)
};

// Whether SLA's sparse branch over nK keys reads e4m3 V^T block by block ([heads, kBlocks, HD, 64],
// vtScatter's values; FP8 P.V on the ws kernel's sparse form): a caller that writes it so, with
// vAmax, sets SageArgs::vtReady and sageAttention skips its own pass over v.
bool sparseVtBlockMajor(int nK);

// Whether the wgmma kernels can serve this head_dim on the current device (compute capability 9.0,
// the library built with sm_90a): head_dim 64 or 128.
bool available(int headDim);

// Dense Sage attention (blocks == null): 128 query rows per CTA on two consumer warpgroups.
// SLA's sparse branch (blocks != null): one warpgroup per 64-row query block over its kc key blocks.
void sageAttention(const SageArgs& a, CUstream_st* stream);

// Dense Sage attention (blocks == null) on the warp-specialized kernel of attention_sm90_ws.cu:
// TMA loads by a producer warpgroup into an mbarrier ring, two consumer warpgroups. sageAttention
// calls it unless FF_CUDA_WGMMA_KERNEL=cpasync.
struct WsOptions {
  bool fp8 = true;          // P.V on e4m3 (a.vt8 filled by the V^T pass), else bf16
  bool pingpong = false;    // the consumers take turns issuing their GEMMs (FF_CUDA_WGMMA_KERNEL=wspp)
};
void sageAttentionWs(const SageArgs& a, const WsOptions& o, CUstream_st* stream);

// Dense bf16 attention (flash: bf16 Q.K^T and P.V, online softmax in fp32) on the warp-specialized
// kernel, Q and K as 64-channel halves through TMA. Strides in elements, multiples of 8.
struct FlashArgs {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  int64_t qHead, qTok, kHead, kTok, vHead, vTok, oHead, oTok;
  int heads, nQ, nK, headDim;
  float scaleLog2;  // softmax scale * log2(e)
};
void flashAttentionWs(const FlashArgs& f, bool pingpong, CUstream_st* stream);

// For the tests: one tile of each product on the layouts, descriptors and register maps of
// sageAttention, so that a failure points at Q.K~ or at P.V. Device pointers, contiguous:
// q [64, hd] and k [bn, hd] INT8 -> s = q k^T [64, bn] int32; p [64, bn] and v [bn, hd] bf16 ->
// o = p v [64, hd] fp32; hd and bn 64 or 128.
void probeTile(int hd, int bn, const int8_t* q, const int8_t* k, const void* p, const void* v, int32_t* s, float* o,
               CUstream_st* stream);

// The same for FP8 P.V: p [64, bn] fp32 in [0, 1] (in S's place), v [bn, hd] bf16 through the V^T
// pass (scratch: hd * 132 bytes) -> o [64, hd] fp32, the raw accumulator
// sum_k e4m3(448 p) e4m3(v * 448 / max|v| of the channel).
void probeTileFp8(int hd, int bn, const float* p, const void* v, float* o, void* scratch, CUstream_st* stream);

}  // namespace ff::cuda::sm90
