// One-tile probes of the Hopper wgmma products for framefleet_cuda_tests (attention_sm90.h): each
// runs one product through the kernels' own loaders, descriptors and register maps, so that a
// failure points at Q.K~, bf16 P.V or FP8 P.V rather than at the pipeline around them.
#include <stdexcept>
#include <string>

#include "kernels/cuda/attention_sm90.cuh"

namespace ff::cuda::sm90 {

namespace {

// One tile of each product through the same helpers as sageWgmmaKernel, for the tests: inputs
// copied into the swizzled layouts, P's A fragments read from global memory by the documented
// register map, results written out by the documented accumulator map.
template <int HD, int BN>
__global__ void __launch_bounds__(128, 1) probeKernel(const uint8_t* q, const uint8_t* k, const uint32_t* p,
                                                      const uint8_t* v, int32_t* s, float* o) {
  extern __shared__ uint8_t smemRaw[];
  const uint32_t sQ = (smemAddr(smemRaw) + 1023u) & ~1023u, sK = sQ + 64 * HD, sV = sK + BN * HD;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, c4 = lane & 3;
  loadKMajor<HD, 64, 128>(sQ, q, HD, 0, 64, tid);
  loadKMajor<HD, BN, 128>(sK, k, HD, 0, BN, tid);
  loadV<HD, BN, 128>(sV, v, HD * 2, 0, BN, tid);
  cpCommit();
  cpWait<0>();
  fenceProxyAsync();
  __syncthreads();
  // p: [64, BN] bf16 as b32 pairs, BN / 2 per row.
  const int row = warp * 16 + g;
  uint32_t pf[BN / 16][4];
#pragma unroll
  for (int kk = 0; kk < BN / 16; ++kk) {
    const int pair = kk * 8 + c4;
    pf[kk][0] = p[row * (BN / 2) + pair];
    pf[kk][1] = p[(row + 8) * (BN / 2) + pair];
    pf[kk][2] = p[row * (BN / 2) + pair + 4];
    pf[kk][3] = p[(row + 8) * (BN / 2) + pair + 4];
  }
  int acc[BN / 2];
  float oacc[HD / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) acc[i] = 0;
#pragma unroll
  for (int i = 0; i < HD / 2; ++i) oacc[i] = 0.0f;
  wgFence();
  issueQK<HD, BN>(acc, sQ, sK);
  wgCommit();
  issuePV<HD, BN>(oacc, pf, sV);
  wgCommit();
  wgWait<0>();
  pinRegs(acc);
  pinRegs(oacc);
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) s[(row + 8 * ((i >> 1) & 1)) * BN + 8 * (i >> 2) + 2 * c4 + (i & 1)] = acc[i];
#pragma unroll
  for (int i = 0; i < HD / 2; ++i) o[(row + 8 * ((i >> 1) & 1)) * HD + 8 * (i >> 2) + 2 * c4 + (i & 1)] = oacc[i];
}

template <int HD, int BN>
void launchProbe(const void* q, const void* k, const void* p, const void* v, int32_t* s, float* o, cudaStream_t stream) {
  constexpr int smem = 64 * HD + BN * HD * 3 + 1024;
  FF_CUDA(cudaFuncSetAttribute(probeKernel<HD, BN>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  probeKernel<HD, BN><<<1, 128, smem, stream>>>(static_cast<const uint8_t*>(q), static_cast<const uint8_t*>(k),
                                                static_cast<const uint32_t*>(p), static_cast<const uint8_t*>(v), s, o);
  FF_CUDA_LAUNCHED("probeKernel");
}

// FP8 P.V alone, for the tests: p [64, BN] fp32 read by the accumulator map (as S would be) and
// packed by packP, V^T from vt8 in prepareFp8V's layout; o = the raw accumulator [64, HD].
template <int HD, int BN>
__global__ void __launch_bounds__(128, 1) probeFp8Kernel(const float* p, const uint8_t* vt8, int64_t vtRow, float* o) {
  extern __shared__ uint8_t smemRaw[];
  const uint32_t sVt = (smemAddr(smemRaw) + 1023u) & ~1023u;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, c4 = lane & 3;
  loadKMajor<BN, HD, 128>(sVt, vt8, vtRow, 0, HD, tid);
  cpCommit();
  cpWait<0>();
  fenceProxyAsync();
  __syncthreads();
  const int row = warp * 16 + g;
  float s[BN / 2];
#pragma unroll
  for (int i = 0; i < BN / 2; ++i) s[i] = p[(row + 8 * ((i >> 1) & 1)) * BN + 8 * (i >> 2) + 2 * c4 + (i & 1)];
  PFrag<BN, true> pf;
  packP<BN, true>(s, pf);
  float oacc[HD / 2];
#pragma unroll
  for (int i = 0; i < HD / 2; ++i) oacc[i] = 0.0f;
  wgFence();
  issuePV8<HD, BN>(oacc, pf, sVt);
  wgCommit();
  wgWait<0>();
  pinRegs(oacc);
#pragma unroll
  for (int i = 0; i < HD / 2; ++i) o[(row + 8 * ((i >> 1) & 1)) * HD + 8 * (i >> 2) + 2 * c4 + (i & 1)] = oacc[i];
}

template <int HD, int BN>
void launchProbeFp8(const float* p, const void* v, float* o, void* scratch, cudaStream_t stream) {
  SageArgs a{};
  a.v = v;
  a.vTok = HD;
  a.heads = 1;
  a.nK = BN;
  a.headDim = HD;
  a.vt8 = static_cast<uint8_t*>(scratch);
  a.vtRow = 128;
  a.vAmax = reinterpret_cast<int*>(a.vt8 + HD * 128);
  prepareFp8V<HD>(a, stream);
  constexpr int smem = HD * BN + 1024;
  probeFp8Kernel<HD, BN><<<1, 128, smem, stream>>>(p, a.vt8, a.vtRow, o);
  FF_CUDA_LAUNCHED("probeFp8Kernel");
}
}  // namespace

void probeTileFp8(int hd, int bn, const float* p, const void* v, float* o, void* scratch, CUstream_st* stream) {
  if (!available(hd) || (bn != 64 && bn != 128))
    throw std::invalid_argument("wgmma FP8 probe: needs an sm_90 device, head_dim 64 or 128 and 64 or 128 keys");
  if (hd == 64 && bn == 64) launchProbeFp8<64, 64>(p, v, o, scratch, stream);
  else if (hd == 64) launchProbeFp8<64, 128>(p, v, o, scratch, stream);
  else if (bn == 64) launchProbeFp8<128, 64>(p, v, o, scratch, stream);
  else launchProbeFp8<128, 128>(p, v, o, scratch, stream);
}

void probeTile(int hd, int bn, const int8_t* q, const int8_t* k, const void* p, const void* v, int32_t* s, float* o,
               CUstream_st* stream) {
  if (!available(hd) || (bn != 64 && bn != 128))
    throw std::invalid_argument("wgmma probe: needs an sm_90 device, head_dim 64 or 128 and 64 or 128 keys, got head_dim " +
                                std::to_string(hd) + ", " + std::to_string(bn) + " keys");
  if (hd == 64 && bn == 64) launchProbe<64, 64>(q, k, p, v, s, o, stream);
  else if (hd == 64) launchProbe<64, 128>(q, k, p, v, s, o, stream);
  else if (bn == 64) launchProbe<128, 64>(q, k, p, v, s, o, stream);
  else launchProbe<128, 128>(q, k, p, v, s, o, stream);
}
}  // namespace ff::cuda::sm90
