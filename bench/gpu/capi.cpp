// C entry points of the CUDA attention kernels over device pointers in SDPA's layout
// [heads, n, hd] (bf16, contiguous), for bench/gpu/bench_attention.py through ctypes. Each returns
// 0 on success, or 1 with the message in ff_cuda_last_error(). Work is queued on the given stream.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <exception>
#include <stdexcept>
#include <string>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/attention_sm90.h"
#include "kernels/cuda/dit_forward.h"
#include "kernels/cuda/gemm.h"

namespace {

thread_local std::string g_error;

ff::cuda::AttnTensor bhnd(void* p, int n, int hd) { return {p, static_cast<int64_t>(n) * hd, hd}; }

cublasHandle_t cublasHandle() {
  static cublasHandle_t handle = nullptr;
  if (!handle && cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cublasCreate failed");
  return handle;
}

// dims: tokens, dim, heads, ffn, layers, ctxTokens, patchOut, frames, rows, cols.
ff::cuda::DitShape ditShape(const int* d, float eps = 1e-6f, double ropeTheta = 10000.0) {
  return {d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], eps, ropeTheta};
}

template <typename F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    g_error = e.what();
    return 1;
  }
}

}  // namespace

extern "C" {

const char* ff_cuda_last_error() { return g_error.c_str(); }

// 1 when sage/SLA calls run the Hopper wgmma kernels for this head_dim under the current
// FF_CUDA_ATTN_IMPL (read at every call, so a caller can switch it between calls), else 0; -1 on error.
int ff_cuda_sage_uses_wgmma(int hd) {
  int uses = -1;
  if (guarded([&] { uses = ff::cuda::sageUsesWgmma(hd) ? 1 : 0; }) != 0) return -1;
  return uses;
}

size_t ff_cuda_workspace_bytes(int heads, int n, int hd) {
  return ff::cuda::attentionWorkspaceBytes({heads, n, n, hd, 0.0f});
}

int ff_cuda_flash(int heads, int n, int hd, void* q, void* k, void* v, void* out, void* stream) {
  return guarded([&] {
    ff::cuda::flashAttention({heads, n, n, hd, 0.0f}, bhnd(q, n, hd), bhnd(k, n, hd), bhnd(v, n, hd), bhnd(out, n, hd),
                             static_cast<cudaStream_t>(stream));
  });
}

int ff_cuda_sage(int heads, int n, int hd, void* q, void* k, void* v, void* out, void* ws, size_t wsBytes, void* stream) {
  return guarded([&] {
    ff::cuda::sageAttention({heads, n, n, hd, 0.0f}, bhnd(q, n, hd), bhnd(k, n, hd), bhnd(v, n, hd), bhnd(out, n, hd), ws,
                            wsBytes, static_cast<cudaStream_t>(stream));
  });
}

// proj: bf16 [hd, hd] or null (sparse branch only); selected: int32 [heads, nb, kc] or null.
int ff_cuda_sla(int heads, int n, int hd, float topK, void* q, void* k, void* v, void* out, void* proj, void* selected,
                void* ws, size_t wsBytes, void* stream) {
  return guarded([&] {
    ff::cuda::SlaOptions o;
    o.topK = topK;
    o.projL = proj;
    o.selectedOut = static_cast<int32_t*>(selected);
    ff::cuda::slaAttention({heads, n, n, hd, 0.0f}, bhnd(q, n, hd), bhnd(k, n, hd), bhnd(v, n, hd), bhnd(out, n, hd), o, ws,
                           wsBytes, cublasHandle(), static_cast<cudaStream_t>(stream));
  });
}

// One SLA call with its stages timed by CUDA events: ms[5] = quantization (+ pooled means, the
// linear branch's block states), block map, sparse branch, the linear branch's z_all and its
// per-query-block part (the states' masked sums, the output kernel).
int ff_cuda_sla_stages(int heads, int n, int hd, float topK, void* q, void* k, void* v, void* out, void* proj, void* ws,
                       size_t wsBytes, void* stream, float* ms) {
  return guarded([&] {
    cudaEvent_t ev[7];  // the start, one per stage, the end
    for (auto& e : ev)
      if (cudaEventCreate(&e) != cudaSuccess) throw std::runtime_error("cudaEventCreate failed");
    const auto st = static_cast<cudaStream_t>(stream);
    ff::cuda::SlaOptions o;
    o.topK = topK;
    o.projL = proj;
    int order[5] = {-1, -1, -1, -1, -1};
    o.stageEvents = ev + 1;
    o.stageOrder = order;
    cudaEventRecord(ev[0], st);
    ff::cuda::slaAttention({heads, n, n, hd, 0.0f}, bhnd(q, n, hd), bhnd(k, n, hd), bhnd(v, n, hd), bhnd(out, n, hd), o, ws,
                           wsBytes, cublasHandle(), st);
    cudaEventRecord(ev[6], st);
    if (cudaEventSynchronize(ev[6]) != cudaSuccess) throw std::runtime_error("SLA stages: synchronize failed");
    // Each stage from the end of the one that ran before it; stages that did not run read 0.
    for (int i = 0; i < 5; ++i) ms[i] = 0.0f;
    cudaEvent_t prev = ev[0];
    for (int j = 0; j < 5 && order[j] >= 0; ++j) {
      cudaEventElapsedTime(ms + order[j], prev, ev[1 + order[j]]);
      prev = ev[1 + order[j]];
    }
    for (auto& e : ev) cudaEventDestroy(e);
  });
}

// dims: tokens, dim, heads, ffn, layers, ctxTokens, patchOut, frames, rows, cols (ints); see
// native/src/kernels/cuda/dit_forward.h for the pointers. attention: 0 flash, 1 sage, 2 SLA.
// withInt8: the scratch for W8A8 linears too.
size_t ff_cuda_dit_scratch_bytes(const int* dims, int withInt8) {
  return ff::cuda::ditScratchBytes(ditShape(dims), withInt8 != 0);
}

int ff_cuda_dit_stage_count() { return ff::cuda::kDitStages; }

// Whether FF_CUDA_INT8_GEMM=fused has a kernel here (built with CUTLASS, compute capability 9.x).
int ff_cuda_int8_gemm_fused_available() {
#ifdef FF_CUDA_HAVE_CUTLASS
  return ff::cuda::gemmInt8DequantAvailable() ? 1 : 0;
#else
  return 0;
#endif
}
// The fused W8A8 GEMM alone (gemm.h): y = act(xs[m] ws[n] (x . w^T) + bias[n]) as bf16 [m, n].
int ff_cuda_gemm_int8_dequant(int m, int n, int k, const void* x, const void* w, const float* xs, const float* ws,
                              const float* bias, int gelu, void* y, void* stream) {
  return guarded([&] {
    ff::cuda::gemmInt8Dequant(m, n, k, static_cast<const int8_t*>(x), static_cast<const int8_t*>(w), xs, ws, bias,
                              gelu != 0, y, n, static_cast<cudaStream_t>(stream));
  });
}

const char* ff_cuda_dit_stage_name(int stage) { return ff::cuda::ditStageName(stage); }

size_t ff_cuda_dit_int8_weight_bytes(const int* dims) {
  return ff::cuda::ditInt8WeightBytes(ditShape(dims));
}

int ff_cuda_dit_quantize_weights(const int* dims, const void* const* blocks, const void* headW, void* buffer, size_t bytes,
                                 void* stream) {
  return guarded([&] {
    ff::cuda::ditQuantizeWeights(ditShape(dims), blocks, headW, buffer, bytes, static_cast<cudaStream_t>(stream));
  });
}

// int8Linears: DitLinear bits run as W8A8 (int8Weights from ff_cuda_dit_quantize_weights);
// stageMs: null, or [ff_cuda_dit_stage_count()] filled with the per-stage breakdown (synchronizes).
int ff_cuda_dit_forward(const int* dims, float eps, double ropeTheta, int attention, float topK, float* tok, const void* ctx,
                        const float* modulation, const void* const* blocks, const float* headMod, const void* headW,
                        const float* headB, void* out, void* scratch, size_t scratchBytes, void* stream,
                        unsigned int8Linears, const void* int8Weights, float* stageMs) {
  return guarded([&] {
    const ff::cuda::DitShape s = ditShape(dims, eps, ropeTheta);
    ff::cuda::DitArgs a;
    a.tok = tok;
    a.ctx = ctx;
    a.modulation = modulation;
    a.blocks = blocks;
    a.headMod = headMod;
    a.headW = headW;
    a.headB = headB;
    a.out = out;
    a.attention = static_cast<ff::cuda::DitAttention>(attention);
    a.slaTopK = topK;
    a.int8Linears = int8Linears;
    a.int8Weights = int8Weights;
    a.stageMs = stageMs;
    ff::cuda::ditForward(s, a, scratch, scratchBytes, cublasHandle(), static_cast<cudaStream_t>(stream));
  });
}

}  // extern "C"
