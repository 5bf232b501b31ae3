// CUDA attention kernels of the engine (built only when nvcc is present; see docs/CUDA.md).
//
// Every tensor is bf16 on the device. Element (head h, token n, channel d) of q, k, v or out is at
// ptr[h * headStride + n * tokenStride + d]: [heads, N, hd] ("BHND", PyTorch's SDPA layout) has
// headStride = N * hd, tokenStride = hd; the engine's token-major [N, heads * hd] has
// headStride = hd, tokenStride = heads * hd. Strides count elements and must be multiples of 8
// (16-byte rows). head_dim is 64 or 128.
//
//  flashAttention  bf16 Q.K^T and P.V on tensor cores (mma.sync m16n8k16), online softmax in fp32.
//  sageAttention   K smoothed by its mean over tokens, Q and K quantized to INT8 with one scale per
//                  block of 64 tokens, INT8 Q.K^T on tensor cores (mma.sync m16n8k32 s8), online
//                  softmax in fp32 (exp2), P.V in bf16 on tensor cores.
//  slaAttention    docs/MODEL.md "SLA attention": 64-token block map from pooled q and k~, top-k
//                  key blocks per query block, the sparse branch on the sage kernel over the
//                  selected blocks, and the linear branch phi(q) H_R / (phi(q) . z_R + 1e-5) over the
//                  unselected blocks R, projected by proj_l: per-key-block states phi(k~_j)^T v_j
//                  (written by the quantization kernel), summed for each query block by a dense
//                  product with the 0/1 mask of its unselected blocks (cuBLAS), z_R = z_all - the
//                  selected blocks' sums, and (phi(q) H_R / (phi(q) . z_R + 1e-5)) proj_l^T.
//
// Scratch memory comes from one caller-owned cudaMalloc block sized by attentionWorkspaceBytes; the
// functions allocate nothing and check every CUDA call (failures throw std::runtime_error).
#pragma once
#include <cstddef>
#include <cstdint>

struct CUstream_st;
struct cublasContext;

namespace ff::cuda {

struct AttnTensor {
  void* data = nullptr;  // bf16
  int64_t headStride = 0, tokenStride = 0;
};

struct AttnShape {
  int heads = 0, qLen = 0, kvLen = 0, headDim = 0;
  float scale = 0;  // softmax scale; 0 = 1/sqrt(headDim)
};

constexpr int kAttnBlock = 64;  // tokens per quantization / SLA block

// kc = clamp(floor(topK * blocks + 0.5), 1, blocks), as the CPU engine.
int slaSelectedCount(float topK, int blocks);

// Bytes of scratch the sage and SLA paths need for this shape (0 is never returned).
size_t attentionWorkspaceBytes(const AttnShape& s);

void flashAttention(const AttnShape& s, const AttnTensor& q, const AttnTensor& k, const AttnTensor& v,
                    const AttnTensor& out, CUstream_st* stream);

void sageAttention(const AttnShape& s, const AttnTensor& q, const AttnTensor& k, const AttnTensor& v,
                   const AttnTensor& out, void* workspace, size_t workspaceBytes, CUstream_st* stream);

struct SlaOptions {
  float topK = 0.1f;
  const void* projL = nullptr;  // bf16 [hd, hd] on the device (attn1.proj_l.weight); null = no linear branch
  int32_t* selectedOut = nullptr;  // optional device [heads, qBlocks, kc]: the key blocks chosen
  // Optional, for profiling: 5 events, one recorded at the end of each stage that runs: 0 the
  // quantization (and the block states phi(k~_j)^T v_j), 1 the block map, 2 the sparse branch, and
  // with the linear branch 3 z_all and 4 the states' masked sums and the output. The
  // stages do not always run in that order (on the wgmma kernels the linear branch runs before the
  // sparse one): stageOrder, when set (5 ints), receives the stage numbers in the order they ran.
  struct CUevent_st* const* stageEvents = nullptr;
  int* stageOrder = nullptr;
};

// Self-attention only (qLen == kvLen). Needs a cuBLAS handle bound to `stream` for the linear branch.
void slaAttention(const AttnShape& s, const AttnTensor& q, const AttnTensor& k, const AttnTensor& v,
                  const AttnTensor& out, const SlaOptions& o, void* workspace, size_t workspaceBytes,
                  cublasContext* cublas, CUstream_st* stream);

}  // namespace ff::cuda
