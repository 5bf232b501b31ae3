#include "io/config.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/error.h"
#include "io/json.h"

namespace ff {

int VaeConfig::temporal_factor() const {
  int f = 1;
  for (bool t : temporal_upsample) f *= t ? 2 : 1;
  return f;
}

namespace {

class Reader {
 public:
  explicit Reader(const std::string& label) : label_(label) {}

  [[noreturn]] void bad(const std::string& key, const std::string& what) const {
    fail(ErrorCode::ModelFormat, label_ + ": " + key + ": " + what);
  }
  const JsonValue& object(const JsonValue& parent, const std::string& key, const std::string& path) const {
    const JsonValue* v = parent.find(key);
    if (!v) bad(path, "missing");
    if (!v->is_object()) bad(path, "must be an object");
    return *v;
  }
  double number(const JsonValue& parent, const std::string& key, const std::string& path, double lo, double hi) const {
    const JsonValue* v = parent.find(key);
    if (!v) bad(path, "missing");
    return number_value(*v, path, lo, hi);
  }
  double number_or(const JsonValue& parent, const std::string& key, const std::string& path, double lo, double hi, double dflt) const {
    const JsonValue* v = parent.find(key);
    return v ? number_value(*v, path, lo, hi) : dflt;
  }
  int integer(const JsonValue& parent, const std::string& key, const std::string& path, int lo, int hi) const {
    double d = number(parent, key, path, lo, hi);
    if (d != std::floor(d)) bad(path, "must be an integer, got " + std::to_string(d));
    return static_cast<int>(d);
  }
  int integer_or(const JsonValue& parent, const std::string& key, const std::string& path, int lo, int hi, int dflt) const {
    return parent.find(key) ? integer(parent, key, path, lo, hi) : dflt;
  }
  double number_value(const JsonValue& v, const std::string& path, double lo, double hi) const {
    if (!v.is_number()) bad(path, "must be a number");
    double d = v.as_number();
    if (d < lo || d > hi) bad(path, "must be in [" + fmt(lo) + ", " + fmt(hi) + "], got " + fmt(d));
    return d;
  }
  static std::string fmt(double d) {
    if (d == std::floor(d) && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
    return std::to_string(d);
  }

 private:
  std::string label_;
};

}  // namespace

ModelConfig parse_model_config(const std::string& label, const std::string& text) {
  JsonValue root;
  try {
    root = parse_json(text, 32);
  } catch (const std::invalid_argument& e) {
    fail(ErrorCode::ModelFormat, label + ": not valid JSON: " + e.what());
  }
  Reader r(label);
  if (!root.is_object()) r.bad("(root)", "must be an object");
  const JsonValue* format = root.find("format");
  if (!format || !format->is_string() || format->as_string() != "framefleet-dit-v1")
    r.bad("format", "must be \"framefleet-dit-v1\"");
  ModelConfig c;
  c.json = text;
  if (const JsonValue* name = root.find("name"); name && name->is_string()) c.name = name->as_string();

  const JsonValue& t = r.object(root, "text", "text");
  c.text.vocab_size = r.integer(t, "vocab_size", "text.vocab_size", 3, 1 << 20);
  c.text.max_tokens = r.integer(t, "max_tokens", "text.max_tokens", 2, 4096);
  c.text.dim = r.integer(t, "dim", "text.dim", 1, 1 << 14);
  c.text.layers = r.integer(t, "layers", "text.layers", 0, 256);
  c.text.heads = r.integer(t, "heads", "text.heads", 1, 256);
  c.text.ffn_dim = r.integer(t, "ffn_dim", "text.ffn_dim", 1, 1 << 16);
  if (c.text.dim % c.text.heads != 0) r.bad("text.heads", "text.dim " + std::to_string(c.text.dim) + " is not divisible by text.heads " + std::to_string(c.text.heads));

  const JsonValue& d = r.object(root, "dit", "dit");
  c.dit.in_channels = r.integer(d, "in_channels", "dit.in_channels", 1, 1024);
  const JsonValue* patch = d.find("patch_size");
  if (!patch || !patch->is_array() || patch->items().size() != 3) r.bad("dit.patch_size", "must be [pt, ph, pw]");
  for (int i = 0; i < 3; ++i) {
    double p = r.number_value(patch->items()[i], "dit.patch_size", 1, 16);
    if (p != std::floor(p)) r.bad("dit.patch_size", "must hold integers");
    c.dit.patch[i] = static_cast<int>(p);
  }
  c.dit.dim = r.integer(d, "dim", "dit.dim", 1, 1 << 14);
  c.dit.layers = r.integer(d, "layers", "dit.layers", 0, 256);
  c.dit.heads = r.integer(d, "heads", "dit.heads", 1, 256);
  c.dit.ffn_dim = r.integer(d, "ffn_dim", "dit.ffn_dim", 1, 1 << 16);
  c.dit.freq_dim = r.integer(d, "freq_dim", "dit.freq_dim", 2, 1 << 14);
  if (c.dit.freq_dim % 2) r.bad("dit.freq_dim", "must be even");
  c.dit.rope_theta = r.number_or(d, "rope_theta", "dit.rope_theta", 1, 1e9, 10000);
  c.dit.eps = r.number_or(d, "eps", "dit.eps", 0, 1, 1e-6);
  if (c.dit.dim % c.dit.heads != 0) r.bad("dit.heads", "dit.dim " + std::to_string(c.dit.dim) + " is not divisible by dit.heads " + std::to_string(c.dit.heads));
  if (c.dit.head_dim() % 2 != 0) r.bad("dit.heads", "head dim " + std::to_string(c.dit.head_dim()) + " must be even for RoPE");

  const JsonValue& v = r.object(root, "vae", "vae");
  c.vae.latent_channels = r.integer(v, "latent_channels", "vae.latent_channels", 1, 1024);
  if (c.vae.latent_channels != c.dit.in_channels) r.bad("vae.latent_channels", "must equal dit.in_channels (" + std::to_string(c.dit.in_channels) + ")");
  const JsonValue* ch = v.find("channels");
  if (!ch || !ch->is_array() || ch->items().size() != 4) r.bad("vae.channels", "must list 4 channel counts");
  for (int i = 0; i < 4; ++i) {
    double x = r.number_value(ch->items()[i], "vae.channels", 1, 4096);
    if (x != std::floor(x)) r.bad("vae.channels", "must hold integers");
    c.vae.channels[i] = static_cast<int>(x);
  }
  const JsonValue* tu = v.find("temporal_upsample");
  if (!tu || !tu->is_array() || tu->items().size() != 3) r.bad("vae.temporal_upsample", "must list 3 booleans");
  for (int i = 0; i < 3; ++i) {
    if (!tu->items()[i].is_bool()) r.bad("vae.temporal_upsample", "must list 3 booleans");
    c.vae.temporal_upsample[i] = tu->items()[i].as_bool();
  }
  if (const JsonValue* sc = v.find("scaling")) {
    if (!sc->is_object()) r.bad("vae.scaling", "must be an object");
    c.vae.mean = r.number_or(*sc, "mean", "vae.scaling.mean", -1e6, 1e6, 0);
    c.vae.std = r.number_or(*sc, "std", "vae.scaling.std", 1e-12, 1e6, 1);
  }

  const JsonValue& vid = r.object(root, "video", "video");
  c.video.width = r.integer(vid, "width", "video.width", 8, 8192);
  c.video.height = r.integer(vid, "height", "video.height", 8, 8192);
  c.video.frames = r.integer(vid, "frames", "video.frames", 1, 4096);
  c.video.fps = r.integer_or(vid, "fps", "video.fps", 1, 240, 16);
  c.video.spatial_multiple = r.integer_or(vid, "spatial_multiple", "video.spatial_multiple", 1, 1024, 8 * std::max(c.dit.patch[1], c.dit.patch[2]));
  c.video.max_width = r.integer_or(vid, "max_width", "video.max_width", 8, 8192, c.video.width);
  c.video.max_height = r.integer_or(vid, "max_height", "video.max_height", 8, 8192, c.video.height);
  c.video.max_frames = r.integer_or(vid, "max_frames", "video.max_frames", 1, 4096, c.video.frames);

  if (const JsonValue* s = root.find("sampling")) {
    if (!s->is_object()) r.bad("sampling", "must be an object");
    c.sampling.steps = r.integer_or(*s, "steps", "sampling.steps", 1, 1000, 50);
    c.sampling.guidance_scale = r.number_or(*s, "guidance_scale", "sampling.guidance_scale", 0, 100, 5.0);
    c.sampling.shift = r.number_or(*s, "shift", "sampling.shift", 1e-3, 1e3, 3.0);
    c.sampling.sigma_max = r.number_or(*s, "sigma_max", "sampling.sigma_max", 1e-3, 1e6, 80.0);
  }
  if (const JsonValue* p = root.find("profiles"); p && !p->is_object()) r.bad("profiles", "must be an object");
  if (const JsonValue* tc = root.find("teacache")) {
    if (!tc->is_object()) r.bad("teacache", "must be an object");
    if (const JsonValue* co = tc->find("coefficients")) {
      if (!co->is_array()) r.bad("teacache.coefficients", "must be an array of numbers");
      for (const JsonValue& x : co->items()) c.teacache_coefficients.push_back(r.number_value(x, "teacache.coefficients", -1e30, 1e30));
    }
  }
  return c;
}

}  // namespace ff
