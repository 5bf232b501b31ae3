// The VAE decoder of a loaded model on the GPU (engine_api.h's EngineVae): the same sequence as
// model/vae.cpp's VaeDecoder::decode, in fp32 throughout. Weights are uploaded once (one
// cudaMalloc); a decode copies the scaled latents in, runs every convolution, norm, SiLU, frame
// split and upsampling on one stream in five activation buffers sized for the largest stage of
// that latent shape (kept until a larger shape comes), and copies conv_out's output back.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/engine_api.h"
#include "kernels/cuda/engine_memory.h"
#include "kernels/cuda/engine_ops.h"
#include "kernels/cuda/engine_vae.h"

namespace ff::cuda {

namespace {

constexpr int kTile = 16;       // output positions per CTA: kTile x kTile of one frame
constexpr int kConvCo = 8;      // output channels per thread
constexpr int kRowThreads = 256;

// y[co, t, oy, ox] = bias[co] + sum over ci and the taps of w[co, ci, dt, dy, dx] *
// x[ci, t + dt - (KT - 1), oy + dy - KH / 2, ox + dx - KW / 2] (zeros outside). One thread per
// output position of a 16 x 16 tile, kConvCo output channels each; the taps of those channels
// for one input channel sit in shared memory.
template <int KT, int KH, int KW>
__global__ void __launch_bounds__(kTile* kTile) conv3dKernel(const float* __restrict__ x, const float* __restrict__ w,
                                                             const float* __restrict__ bias, float* __restrict__ y, int ci_n,
                                                             int co_n, int T, int H, int W) {
  constexpr int kTaps = KT * KH * KW;
  __shared__ float ws[kConvCo * kTaps];
  const int tilesX = (W + kTile - 1) / kTile;
  const int ox = (blockIdx.x % tilesX) * kTile + static_cast<int>(threadIdx.x % kTile);
  const int oy = (blockIdx.x / tilesX) * kTile + static_cast<int>(threadIdx.x / kTile);
  const int t = blockIdx.y, co0 = blockIdx.z * kConvCo;
  const bool inside = ox < W && oy < H;
  float acc[kConvCo];
#pragma unroll
  for (int c = 0; c < kConvCo; ++c) acc[c] = bias && co0 + c < co_n ? bias[co0 + c] : 0.0f;
  const int64_t plane = static_cast<int64_t>(H) * W;
  for (int ci = 0; ci < ci_n; ++ci) {
    __syncthreads();
    for (int i = threadIdx.x; i < kConvCo * kTaps; i += kTile * kTile) {
      const int co = co0 + i / kTaps;
      ws[i] = co < co_n ? w[(static_cast<int64_t>(co) * ci_n + ci) * kTaps + i % kTaps] : 0.0f;
    }
    __syncthreads();
    if (!inside) continue;
#pragma unroll
    for (int dt = 0; dt < KT; ++dt) {
      const int it = t + dt - (KT - 1);
      if (it < 0) continue;
      const float* xf = x + (static_cast<int64_t>(ci) * T + it) * plane;
#pragma unroll
      for (int dy = 0; dy < KH; ++dy) {
        const int iy = oy + dy - KH / 2;
        if (iy < 0 || iy >= H) continue;
#pragma unroll
        for (int dx = 0; dx < KW; ++dx) {
          const int ix = ox + dx - KW / 2;
          if (ix < 0 || ix >= W) continue;
          const float v = __ldg(xf + static_cast<int64_t>(iy) * W + ix);
          const int tap = (dt * KH + dy) * KW + dx;
#pragma unroll
          for (int c = 0; c < kConvCo; ++c) acc[c] = fmaf(v, ws[c * kTaps + tap], acc[c]);
        }
      }
    }
  }
  if (!inside) return;
#pragma unroll
  for (int c = 0; c < kConvCo; ++c)
    if (co0 + c < co_n) y[((static_cast<int64_t>(co0 + c) * T + t) * H + oy) * W + ox] = acc[c];
}

// y = silu(x / sqrt(mean over channels of x^2 + eps) * w[c]), x and y [channels, positions]; one
// thread per position.
__global__ void normSiluKernel(const float* __restrict__ x, float* __restrict__ y, int channels, int64_t positions,
                               const float* __restrict__ w, float eps) {
  const int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (p >= positions) return;
  float ss = 0.0f;
  for (int c = 0; c < channels; ++c) {
    const float v = x[c * positions + p];
    ss = fmaf(v, v, ss);
  }
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(channels) + eps);
  for (int c = 0; c < channels; ++c) {
    const float v = x[c * positions + p] * inv * (w ? w[c] : 1.0f);
    y[c * positions + p] = v / (1.0f + expf(-v));
  }
}

// y [2c, T, hw] -> out [c, 2T - 1, hw]: frame f of channel ci is y[(f + 1) % 2 * c + ci, (f + 1) / 2].
__global__ void splitFramesKernel(const float* __restrict__ y, float* __restrict__ out, int c, int T, int64_t hw) {
  const int64_t T2 = 2 * T - 1, n = c * T2 * hw;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t pos = i % hw, f = (i / hw) % T2, ci = i / (hw * T2);
  const int64_t idx = f + 1, t = idx / 2, half = idx % 2;
  out[i] = y[((half * c + ci) * T + t) * hw + pos];
}

// Nearest 2x in space: out [planes, 2H, 2W] from x [planes, H, W].
__global__ void upsample2xKernel(const float* __restrict__ x, float* __restrict__ out, int64_t planes, int H, int W) {
  const int64_t n = planes * 4 * H * W;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int64_t xx = i % (2 * W), yy = (i / (2 * W)) % (2 * H), p = i / (4 * static_cast<int64_t>(H) * W);
  out[i] = x[(p * H + yy / 2) * W + xx / 2];
}

unsigned blocksFor(int64_t n) { return static_cast<unsigned>((n + kRowThreads - 1) / kRowThreads); }

// An activation [c, t, h, w] in one of the decoder's buffers.
struct Act {
  float* p = nullptr;
  int c = 0, t = 0, h = 0, w = 0;
  int64_t numel() const { return static_cast<int64_t>(c) * t * h * w; }
};

void checkConv(const EngineConv& c, const char* what) {
  if (!c.weight || c.out <= 0 || c.in <= 0)
    throw std::invalid_argument(std::string("VAE ") + what + ": missing weights");
  const bool known = (c.kt == 3 && c.kh == 3 && c.kw == 3) || (c.kt == 1 && c.kh == 1 && c.kw == 1) ||
                     (c.kt == 1 && c.kh == 3 && c.kw == 3);
  if (!known)
    throw std::invalid_argument(std::string("VAE ") + what + ": kernel " + std::to_string(c.kt) + "x" + std::to_string(c.kh) + "x" +
                                std::to_string(c.kw) + " (the CUDA decoder runs 3x3x3, 1x3x3 and 1x1x1)");
}

class CudaVae final : public EngineVae {
 public:
  explicit CudaVae(const EngineVaeWeights& w) : w_(w) {
    checkConv(w.convIn, "conv_in");
    if (w.convIn.in != w.latentChannels) throw std::invalid_argument("VAE conv_in: input channels != latent channels");
    checkRes(w.mid, "mid");
    for (int i = 0; i < 3; ++i) {
      checkRes(w.up[i].res, "up res");
      if (w.up[i].time.weight) checkConv(w.up[i].time, "up time");
      checkConv(w.up[i].space, "up space");
    }
    checkConv(w.convOut, "conv_out");
    FF_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    upload();
  }
  ~CudaVae() override {
    if (stream_) cudaStreamDestroy(stream_);
  }

  int outFrames(int frames) const override {
    int t = frames;
    for (const EngineVaeUp& u : w_.up)
      if (u.time.weight) t = 2 * t - 1;
    return t;
  }
  uint64_t weightBytes() const override { return weights_.bytes(); }

  void decode(const float* latents, int frames, int height, int width, float* out) override {
    if (frames < 1 || height < 1 || width < 1) throw std::invalid_argument("VAE decode: empty latent");
    reserve(frames, height, width);
    const int64_t n = static_cast<int64_t>(w_.latentChannels) * frames * height * width;
    float* z = staging_.f32();
    for (int64_t i = 0; i < n; ++i) z[i] = static_cast<float>(latents[i] * w_.std + w_.mean);
    Act x{buf_[0], w_.latentChannels, frames, height, width};
    FF_CUDA(cudaMemcpyAsync(x.p, z, n * sizeof(float), cudaMemcpyHostToDevice, stream_));
    x = conv(w_.convIn, x, {x.p});
    x = res(w_.mid, x);
    for (const EngineVaeUp& u : w_.up) {
      x = res(u.res, x);
      if (u.time.weight) {
        const Act y = conv(u.time, x, {x.p});
        Act s{other({y.p}), x.c, 2 * x.t - 1, x.h, x.w};
        splitFramesKernel<<<blocksFor(s.numel()), kRowThreads, 0, stream_>>>(y.p, s.p, x.c, x.t,
                                                                             static_cast<int64_t>(x.h) * x.w);
        FF_CUDA_LAUNCHED("splitFramesKernel");
        x = s;
      }
      Act up{other({x.p}), x.c, x.t, 2 * x.h, 2 * x.w};
      upsample2xKernel<<<blocksFor(up.numel()), kRowThreads, 0, stream_>>>(x.p, up.p, static_cast<int64_t>(x.c) * x.t, x.h, x.w);
      FF_CUDA_LAUNCHED("upsample2xKernel");
      x = conv(u.space, up, {up.p});
    }
    const Act rgb = conv(w_.convOut, normSilu(x, w_.normOut, {x.p}), {});
    const size_t bytes = static_cast<size_t>(rgb.numel()) * sizeof(float);
    result_.reserve(bytes);
    FF_CUDA(cudaMemcpyAsync(result_.p, rgb.p, bytes, cudaMemcpyDeviceToHost, stream_));
    FF_CUDA(cudaStreamSynchronize(stream_));
    std::copy(result_.f32(), result_.f32() + rgb.numel(), out);
  }

 private:
  static void checkRes(const EngineVaeResBlock& r, const char* what) {
    checkConv(r.conv1, what);
    checkConv(r.conv2, what);
    if (r.skip.weight) checkConv(r.skip, what);
    else if (r.conv1.in != r.conv2.out) throw std::invalid_argument(std::string("VAE ") + what + ": channels change without a skip conv");
  }

  // The weights, copied into one device allocation: w_ then holds device pointers (the host tensors
  // belong to the caller and are not needed again).
  void upload() {
    std::vector<EngineConv*> convs;
    std::vector<std::pair<const float**, int>> vectors;
    EngineVaeWeights dev = w_;
    auto addRes = [&](EngineVaeResBlock& r) {
      convs.push_back(&r.conv1);
      convs.push_back(&r.conv2);
      if (r.skip.weight) convs.push_back(&r.skip);
      vectors.push_back({&r.norm1, r.conv1.in});
      vectors.push_back({&r.norm2, r.conv2.in});
    };
    convs.push_back(&dev.convIn);
    addRes(dev.mid);
    for (EngineVaeUp& u : dev.up) {
      addRes(u.res);
      if (u.time.weight) convs.push_back(&u.time);
      convs.push_back(&u.space);
    }
    vectors.push_back({&dev.normOut, dev.convOut.in});
    convs.push_back(&dev.convOut);
    size_t bytes = 0;
    auto weightCount = [](const EngineConv& c) { return static_cast<size_t>(c.out) * c.in * c.kt * c.kh * c.kw; };
    for (const EngineConv* c : convs) bytes += DeviceArena::round(weightCount(*c) * 4) + DeviceArena::round(c->out * 4u);
    for (const auto& v : vectors) bytes += DeviceArena::round(static_cast<size_t>(v.second) * 4);
    weights_.allocate(bytes);
    auto put = [&](const float* host, size_t count) -> const float* {
      auto* d = static_cast<float*>(weights_.take(count * 4));
      FF_CUDA(cudaMemcpy(d, host, count * 4, cudaMemcpyHostToDevice));
      return d;
    };
    for (EngineConv* c : convs) {
      c->weight = put(c->weight, weightCount(*c));
      if (c->bias) c->bias = put(c->bias, c->out);
    }
    for (const auto& [ptr, count] : vectors)
      if (*ptr) *ptr = put(*ptr, count);
    w_ = dev;
  }

  // Buffers for a latent shape: five of the largest activation's size (the decoder never needs
  // more than five alive), the pinned input staging and output.
  void reserve(int frames, int height, int width) {
    int t = frames, h = height, wd = width;
    int64_t largest = static_cast<int64_t>(w_.latentChannels) * t * h * wd;
    auto seen = [&](int channels) { largest = std::max(largest, static_cast<int64_t>(channels) * t * h * wd); };
    seen(w_.convIn.out);
    seen(w_.mid.conv2.out);
    for (const EngineVaeUp& u : w_.up) {
      seen(u.res.conv1.in);
      seen(u.res.conv2.out);
      if (u.time.weight) {
        seen(u.time.out);
        t = 2 * t - 1;
        seen(u.time.out / 2);
      }
      h *= 2;
      wd *= 2;
      seen(u.space.in);
      seen(u.space.out);
    }
    seen(w_.convOut.out);
    const size_t need = static_cast<size_t>(largest) * sizeof(float);
    if (need > bufBytes_) {
      buffers_.allocate(5 * DeviceArena::round(need));
      for (float*& b : buf_) b = static_cast<float*>(buffers_.take(need));
      bufBytes_ = need;
    }
    staging_.reserve(static_cast<size_t>(w_.latentChannels) * frames * height * width * sizeof(float));
  }

  // A buffer other than those in `busy` and `also`.
  float* other(std::initializer_list<const float*> busy, const float* also = nullptr) const {
    for (float* b : buf_)
      if (b != also && std::find(busy.begin(), busy.end(), b) == busy.end()) return b;
    throw std::logic_error("CudaVae: no free activation buffer");
  }

  // The conv's output goes to a buffer other than x's and those in keep.
  Act conv(const EngineConv& c, const Act& x, std::initializer_list<const float*> keep) {
    if (x.c != c.in) throw std::invalid_argument("VAE conv: " + std::to_string(x.c) + " input channels, weights take " + std::to_string(c.in));
    const Act y{other(keep, x.p), c.out, x.t, x.h, x.w};
    const dim3 grid(static_cast<unsigned>(((x.w + kTile - 1) / kTile) * ((x.h + kTile - 1) / kTile)), static_cast<unsigned>(x.t),
                    static_cast<unsigned>((c.out + kConvCo - 1) / kConvCo));
    if (c.kt == 3) conv3dKernel<3, 3, 3><<<grid, kTile * kTile, 0, stream_>>>(x.p, c.weight, c.bias, y.p, c.in, c.out, x.t, x.h, x.w);
    else if (c.kh == 3) conv3dKernel<1, 3, 3><<<grid, kTile * kTile, 0, stream_>>>(x.p, c.weight, c.bias, y.p, c.in, c.out, x.t, x.h, x.w);
    else conv3dKernel<1, 1, 1><<<grid, kTile * kTile, 0, stream_>>>(x.p, c.weight, c.bias, y.p, c.in, c.out, x.t, x.h, x.w);
    FF_CUDA_LAUNCHED("conv3dKernel");
    return y;
  }

  Act normSilu(const Act& x, const float* w, std::initializer_list<const float*> keep) {
    Act y = x;
    y.p = other(keep, x.p);
    const int64_t positions = static_cast<int64_t>(x.t) * x.h * x.w;
    normSiluKernel<<<blocksFor(positions), kRowThreads, 0, stream_>>>(x.p, y.p, x.c, positions, w, w_.eps);
    FF_CUDA_LAUNCHED("normSiluKernel");
    return y;
  }

  // conv2(silu(norm2(conv1(silu(norm1(x)))))) + skip(x); x stays intact until the sum.
  Act res(const EngineVaeResBlock& r, const Act& x) {
    const Act a = normSilu(x, r.norm1, {x.p});
    const Act h = conv(r.conv1, a, {x.p});
    const Act b = normSilu(h, r.norm2, {x.p});
    const Act y = conv(r.conv2, b, {x.p});
    const Act s = r.skip.weight ? conv(r.skip, x, {y.p}) : x;
    addInPlace(y.p, s.p, y.numel(), stream_);
    return y;
  }

  EngineVaeWeights w_;  // device pointers once upload() ran
  cudaStream_t stream_ = nullptr;
  DeviceArena weights_, buffers_;
  float* buf_[5] = {};
  size_t bufBytes_ = 0;
  PinnedBuffer staging_, result_;
};

}  // namespace

EngineVae* createCudaVae(const EngineVaeWeights& weights) { return new CudaVae(weights); }

}  // namespace ff::cuda
