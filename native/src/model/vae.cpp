#include "model/vae.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <set>

#include "core/error.h"
#include "core/threadpool.h"
#include "kernels/cpu/conv3d.h"
#include "kernels/cpu/ops.h"
#include "model/profile.h"

namespace ff {

namespace {

void add_conv(std::vector<ParamSpec>& p, const std::string& name, int64_t out, int64_t in, int64_t kt, int64_t kh, int64_t kw) {
  p.push_back({name + ".weight", {out, in, kt, kh, kw}});
  p.push_back({name + ".bias", {out}});
}

void add_res_block(std::vector<ParamSpec>& p, const std::string& name, int64_t a, int64_t b) {
  p.push_back({name + ".norm1.weight", {a}});
  add_conv(p, name + ".conv1", b, a, 3, 3, 3);
  p.push_back({name + ".norm2.weight", {b}});
  add_conv(p, name + ".conv2", b, b, 3, 3, 3);
  if (a != b) add_conv(p, name + ".skip", b, a, 1, 1, 1);
}

// x: [C, T, H, W] -> silu(channel_rms_norm(x) * w)
Tensor norm_silu(const Tensor& x, const float* w) {
  FF_PROFILE("vae norm+silu");
  Tensor y = Tensor::uninitialized(x.shape());
  const int64_t c = x.dim(0), positions = x.numel() / c;
  channel_rms_norm(x.data(), y.data(), c, positions, w, kVaeEps);
  silu_inplace(y.data(), y.numel());
  return y;
}

// Profile labels must outlive the profile: one interned string per layer name.
const char* profile_name(const std::string& name) {
  static std::mutex mu;
  static std::set<std::string> names;
  std::lock_guard<std::mutex> lock(mu);
  return names.insert(name).first->c_str();
}

}  // namespace

std::vector<ParamSpec> vae_params(const VaeConfig& c) {
  std::vector<ParamSpec> p;
  const auto& ch = c.channels;
  add_conv(p, "vae.conv_in", ch[0], c.latent_channels, 3, 3, 3);
  add_res_block(p, "vae.mid", ch[0], ch[0]);
  for (int i = 0; i < 3; ++i) {
    std::string up = "vae.up." + std::to_string(i);
    add_res_block(p, up + ".res", ch[i], ch[i + 1]);
    if (c.temporal_upsample[i]) add_conv(p, up + ".time", 2 * ch[i + 1], ch[i + 1], 1, 1, 1);
    add_conv(p, up + ".space", ch[i + 1], ch[i + 1], 1, 3, 3);
  }
  p.push_back({"vae.norm_out.weight", {ch[3]}});
  add_conv(p, "vae.conv_out", 3, ch[3], 1, 3, 3);
  return p;
}

Tensor VaeDecoder::conv(const std::string& name, const Tensor& x, int64_t out_channels, int kt, int kh, int kw) const {
  FF_PROFILE(profile_name(name));
  Conv3dShape s{x.dim(0), out_channels, x.dim(1), x.dim(2), x.dim(3), kt, kh, kw};
  Tensor y = Tensor::uninitialized({out_channels, x.dim(1), x.dim(2), x.dim(3)});
  conv3d(s, x.data(), w_.f32(name + ".weight"), w_.f32(name + ".bias"), y.data());
  return y;
}

Tensor VaeDecoder::res_block(const std::string& name, const Tensor& x, int64_t b) const {
  // y = conv2(silu(norm2(conv1(silu(norm1(x)))))) + skip(x)
  Tensor h = conv(name + ".conv1", norm_silu(x, w_.f32(name + ".norm1.weight")), b, 3, 3, 3);
  Tensor y = conv(name + ".conv2", norm_silu(h, w_.f32(name + ".norm2.weight")), b, 3, 3, 3);
  if (x.dim(0) != b) {
    Tensor skip = conv(name + ".skip", x, b, 1, 1, 1);
    add_gated(y.data(), skip.data(), 1, y.numel(), nullptr);
  } else {
    add_gated(y.data(), x.data(), 1, y.numel(), nullptr);
  }
  return y;
}

Tensor VaeDecoder::decode(const float* latents, const LatentShape& s) const {
  Tensor z = Tensor::uninitialized({s.channels, s.frames, s.height, s.width});
  for (int64_t i = 0; i < z.numel(); ++i) z.data()[i] = float(latents[i] * c_.std + c_.mean);
  const auto& ch = c_.channels;
  Tensor x = conv("vae.conv_in", z, ch[0], 3, 3, 3);
  x = res_block("vae.mid", x, ch[0]);
  for (int i = 0; i < 3; ++i) {
    std::string up = "vae.up." + std::to_string(i);
    const int64_t c = ch[i + 1];
    x = res_block(up + ".res", x, c);
    if (c_.temporal_upsample[i]) {
      // y = time(x): [2c, T, h, w]; frame 2t = y[:c, t], 2t+1 = y[c:, t]; frame 0 dropped -> 2T - 1
      Tensor y = conv(up + ".time", x, 2 * c, 1, 1, 1);
      const int64_t T = x.dim(1), hw = x.dim(2) * x.dim(3), T2 = 2 * T - 1;
      Tensor t2 = Tensor::uninitialized({c, T2, x.dim(2), x.dim(3)});
      for (int64_t ci = 0; ci < c; ++ci)
        for (int64_t f = 0; f < T2; ++f) {
          int64_t idx = f + 1, t = idx / 2, half = idx % 2;
          std::memcpy(t2.data() + (ci * T2 + f) * hw, y.data() + ((half * c + ci) * T + t) * hw, hw * sizeof(float));
        }
      x = std::move(t2);
    }
    // nearest 2x spatial upsampling, then the 1x3x3 conv
    const int64_t T = x.dim(1), H = x.dim(2), W = x.dim(3);
    Tensor u = Tensor::uninitialized({c, T, 2 * H, 2 * W});
    {
      FF_PROFILE("vae upsample");
      ThreadPool::global().parallel_for(c * T, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p)
          for (int64_t y = 0; y < 2 * H; ++y)
            for (int64_t xx = 0; xx < 2 * W; ++xx) u.data()[(p * 2 * H + y) * 2 * W + xx] = x.data()[(p * H + y / 2) * W + xx / 2];
      });
    }
    x = conv(up + ".space", u, c, 1, 3, 3);
  }
  return conv("vae.conv_out", norm_silu(x, w_.f32("vae.norm_out.weight")), 3, 1, 3, 3);
}

size_t VaeDecoder::peak_bytes(const LatentShape& s) const {
  // The largest stage: the last upsampled activation and its conv input/output plus one frame
  // of im2col for a 3x3x3 conv.
  const int64_t tf = c_.temporal_factor();
  const int64_t frames = 1 + tf * (s.frames - 1), H = 8 * s.height, W = 8 * s.width;
  int64_t c = 0;
  for (int v : c_.channels) c = std::max<int64_t>(c, v);
  const int64_t act = c * frames * H * W;
  return size_t(4 * act + c * 27 * H * W) * sizeof(float);
}

std::vector<uint8_t> to_rgb(const Tensor& x) {
  const int64_t F = x.dim(1), H = x.dim(2), W = x.dim(3), plane = F * H * W;
  std::vector<uint8_t> out(size_t(plane) * 3);
  for (int64_t i = 0; i < plane; ++i)
    for (int64_t ch = 0; ch < 3; ++ch) {
      float v = (x.data()[ch * plane + i] + 1.0f) * 127.5f;
      v = v < 0.f ? 0.f : (v > 255.f ? 255.f : v);
      out[size_t(i) * 3 + ch] = uint8_t(std::lround(v));
    }
  return out;
}

}  // namespace ff
