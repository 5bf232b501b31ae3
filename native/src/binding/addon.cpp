// The Node binding: JS values are copied into plain structs on the main thread, the work runs in
// AsyncWorkers (never touching N-API in Execute), progress crosses back through the worker's
// progress queue, and errors reject the promise with an Error carrying `code` (E_MODEL_FORMAT,
// E_BAD_REQUEST, E_ABORTED, E_OUT_OF_MEMORY, E_NUMERIC). src/native/index.ts is the only caller.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <new>
#include <string>

#include "core/cpu_features.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "model/backend.h"
#include "model/dispatch.h"
#include "model/model.h"

namespace {

using ff::ErrorCode;

Napi::Error make_error(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

// Runs fn, storing any failure as (code, message) for OnError.
struct Failure {
  std::string code, message;
};
template <class Fn>
bool capture(Fn&& fn, Failure& failure) {
  try {
    fn();
    return true;
  } catch (const ff::Error& e) {
    failure = {ff::error_code_name(e.code()), e.what()};
  } catch (const std::bad_alloc&) {
    failure = {"E_OUT_OF_MEMORY", "out of memory"};
  } catch (const std::exception& e) {
    failure = {"E_INTERNAL", e.what()};
  }
  return false;
}

[[noreturn]] void bad_request(const std::string& what) { ff::fail(ErrorCode::BadRequest, what); }

std::string get_string(const Napi::Object& o, const char* key, bool required, const std::string& dflt = "") {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) {
    if (required) bad_request(std::string(key) + ": required");
    return dflt;
  }
  if (!v.IsString()) bad_request(std::string(key) + ": must be a string");
  return v.As<Napi::String>().Utf8Value();
}

double get_number(const Napi::Object& o, const char* key, double dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsNumber()) bad_request(std::string(key) + ": must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) bad_request(std::string(key) + ": must be finite");
  return d;
}

int get_int(const Napi::Object& o, const char* key, int dflt, int lo, int hi) {
  double d = get_number(o, key, dflt);
  if (d != std::floor(d) || d < lo || d > hi) bad_request(std::string(key) + ": must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return int(d);
}

// request: {prompt, negativePrompt?, seed, width?, height?, frames?, attention?, slaTopK?, linear?,
//           sampler?, steps?, guidanceScale?, teaCache?, weights?}
ff::Request parse_request(const Napi::Object& o) {
  ff::Request r;
  r.prompt = get_string(o, "prompt", true);
  r.negative_prompt = get_string(o, "negativePrompt", false);
  double seed = get_number(o, "seed", 0);
  if (seed < 0 || seed > 9007199254740991.0 || seed != std::floor(seed)) bad_request("seed: must be an integer in [0, 2^53)");
  r.seed = uint64_t(seed);
  r.width = get_int(o, "width", 0, 0, 1 << 16);
  r.height = get_int(o, "height", 0, 0, 1 << 16);
  r.frames = get_int(o, "frames", 0, 0, 1 << 16);
  ff::Knobs& n = r.knobs;  // knobs sit beside the prompt, as in a resolved profile
  n.attention = ff::parse_attention(get_string(o, "attention", false, "dense"));
  n.sla_top_k = get_number(o, "slaTopK", 0.1);
  n.linear = ff::parse_linear(get_string(o, "linear", false, "fp32"));
  n.sampler = ff::parse_sampler(get_string(o, "sampler", false, "euler"));
  n.steps = get_int(o, "steps", 0, 0, 1000);
  n.guidance_scale = get_number(o, "guidanceScale", -1);
  n.tea_cache = get_number(o, "teaCache", 0);
  n.weights = ff::parse_weights(get_string(o, "weights", false, "dit"));
  return r;
}

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string dir, ff::LoadOptions options, Napi::FunctionReference* ctor)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), dir_(std::move(dir)), options_(options), ctor_(ctor) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    capture([&] { model_ = ff::Model::load(dir_, options_); }, failure_);
  }
  void OnOK() override;

 private:
  Napi::Promise::Deferred deferred_;
  std::string dir_;
  ff::LoadOptions options_;
  Napi::FunctionReference* ctor_;
  std::shared_ptr<ff::Model> model_;
  Failure failure_;
};

struct ProgressEvent {
  char stage[16];
  int step, total;
};

class GenerateWorker : public Napi::AsyncProgressQueueWorker<ProgressEvent> {
 public:
  GenerateWorker(Napi::Env env, Napi::Function noop, std::shared_ptr<ff::Model> model, ff::Request request, Napi::Value on_progress,
                 Napi::Int32Array abort_flag)
      : Napi::AsyncProgressQueueWorker<ProgressEvent>(noop),
        deferred_(Napi::Promise::Deferred::New(env)),
        model_(std::move(model)),
        request_(std::move(request)) {
    if (on_progress.IsFunction()) on_progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
    abort_ref_ = Napi::Persistent(abort_flag);
    // The Int32Array stays referenced until the worker is destroyed; the worker thread only reads
    // the first element atomically.
    abort_ = reinterpret_cast<const std::atomic<int>*>(abort_flag.Data());
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    capture([&] {
      result_ = model_->generate(request_, [&](const char* stage, int step, int total) {
        ProgressEvent e{};
        std::snprintf(e.stage, sizeof e.stage, "%s", stage);
        e.step = step;
        e.total = total;
        progress.Send(&e, 1);
      }, abort_);
    }, failure_);
  }

  void OnProgress(const ProgressEvent* events, size_t count) override {
    if (on_progress_.IsEmpty()) return;
    Napi::Env env = Env();
    for (size_t i = 0; i < count; ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("stage", events[i].stage);
      o.Set("step", events[i].step);
      o.Set("totalSteps", events[i].total);
      on_progress_.Call({o});
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!failure_.code.empty()) {
      deferred_.Reject(make_error(env, failure_.code.c_str(), failure_.message).Value());
      return;
    }
    auto* frames = new std::vector<uint8_t>(std::move(result_.frames));
    Napi::Object out = Napi::Object::New(env);
    out.Set("frames", Napi::Buffer<uint8_t>::New(env, frames->data(), frames->size(),
                                                 [](Napi::Env, uint8_t*, std::vector<uint8_t>* v) { delete v; }, frames));
    out.Set("width", result_.width);
    out.Set("height", result_.height);
    out.Set("frameCount", result_.frame_count);
    out.Set("nfe", result_.nfe);
    const ff::Timings& t = result_.timings;
    Napi::Object timings = Napi::Object::New(env);
    timings.Set("prepareWeights", t.prepare_weights);
    timings.Set("textEncode", t.text_encode);
    timings.Set("denoise", t.denoise);
    timings.Set("decode", t.decode);
    timings.Set("total", t.total);
    out.Set("timings", timings);
    const ff::Knobs& k = result_.request.knobs;
    Napi::Object knobs = Napi::Object::New(env);
    knobs.Set("attention", ff::attention_name(k.attention));
    knobs.Set("slaTopK", k.sla_top_k);
    knobs.Set("linear", ff::linear_name(k.linear));
    knobs.Set("sampler", ff::sampler_name(k.sampler));
    knobs.Set("steps", k.steps);
    knobs.Set("guidanceScale", k.guidance_scale);
    knobs.Set("teaCache", k.tea_cache);
    knobs.Set("weights", ff::weights_name(k.weights));
    out.Set("knobs", knobs);
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<ff::Model> model_;
  ff::Request request_;
  Napi::FunctionReference on_progress_;
  Napi::Reference<Napi::Int32Array> abort_ref_;
  const std::atomic<int>* abort_ = nullptr;
  ff::GenerateResult result_;
  Failure failure_;
};

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::FunctionReference* Init(Napi::Env env) {
    Napi::Function f = DefineClass(env, "NativeModel", {InstanceMethod("generate", &NativeModel::Generate), InstanceMethod("info", &NativeModel::Info)});
    auto* ref = new Napi::FunctionReference(Napi::Persistent(f));
    env.SetInstanceData(ref);
    return ref;
  }
  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {}
  std::shared_ptr<ff::Model> model;

 private:
  // generate(request, onProgress | undefined, abortFlag: Int32Array(1)) -> Promise
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ff::Request request;
    Failure failure;
    bool ok = capture([&] {
      if (!model) bad_request("model is not loaded");
      if (info.Length() < 3 || !info[0].IsObject() || !info[2].IsTypedArray() ||
          info[2].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || info[2].As<Napi::Int32Array>().ElementLength() < 1)
        bad_request("generate(request, onProgress, abortFlag: Int32Array) called with wrong arguments");
      request = parse_request(info[0].As<Napi::Object>());
    }, failure);
    if (!ok) {
      auto d = Napi::Promise::Deferred::New(env);
      d.Reject(make_error(env, failure.code.c_str(), failure.message).Value());
      return d.Promise();
    }
    Napi::Function noop = Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
    auto* w = new GenerateWorker(env, noop, model, std::move(request), info[1], info[2].As<Napi::Int32Array>());
    Napi::Promise p = w->promise();
    w->Queue();
    return p;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    if (!model) return o;
    o.Set("dir", model->dir());
    o.Set("config", model->config().json);
    o.Set("hasStudent", model->has_student());
    o.Set("weightBytes", double(model->weight_bytes()));
    const bool gpu = model->backend() == ff::BackendKind::Cuda;
    o.Set("backend", gpu ? "cuda" : "cpu");
    if (!model->backend_note().empty()) o.Set("backendNote", model->backend_note());
    return o;
  }
};

void LoadWorker::OnOK() {
  Napi::Env env = Env();
  if (!failure_.code.empty()) {
    deferred_.Reject(make_error(env, failure_.code.c_str(), failure_.message).Value());
    return;
  }
  Napi::Object obj = ctor_->New({});
  NativeModel::Unwrap(obj)->model = model_;
  deferred_.Resolve(obj);
}

// loadModel(dir: string, options: {memoryLimitBytes?: number, backend?: "auto" | "cpu" | "cuda"})
//   -> Promise<NativeModel>
Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(make_error(env, "E_BAD_REQUEST", "loadModel(dir, options): dir must be a string").Value());
    return d.Promise();
  }
  ff::LoadOptions options;
  if (info.Length() > 1 && info[1].IsObject()) {
    Napi::Value limit = info[1].As<Napi::Object>().Get("memoryLimitBytes");
    if (limit.IsNumber()) options.memory_limit_bytes = uint64_t(std::max(0.0, limit.As<Napi::Number>().DoubleValue()));
    Napi::Value backend = info[1].As<Napi::Object>().Get("backend");
    if (backend.IsString()) options.backend = backend.As<Napi::String>().Utf8Value();
  }
  auto* ctor = env.GetInstanceData<Napi::FunctionReference>();
  auto* w = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), options, ctor);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  // The backends this build has; cuda.device is the GPU a model would use here.
  const ff::CudaStatus& cuda = ff::cuda_status();
  Napi::Array backends = Napi::Array::New(env);
  backends.Set(uint32_t(0), "cpu");
  if (cuda.built) backends.Set(uint32_t(1), "cuda");
  o.Set("backends", backends);
  Napi::Object gpu = Napi::Object::New(env);
  gpu.Set("built", cuda.built);
  if (cuda.available) {
    Napi::Object device = Napi::Object::New(env);
    device.Set("name", cuda.device);
    device.Set("computeCapability", std::to_string(cuda.major) + "." + std::to_string(cuda.minor));
    device.Set("memoryBytes", double(cuda.memory_bytes));
    gpu.Set("device", device);
  } else {
    gpu.Set("reason", cuda.reason);
  }
  o.Set("cuda", gpu);
  o.Set("threads", ff::ThreadPool::global().size());
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("brand", ff::cpu_features().brand);
  Napi::Array features = Napi::Array::New(env);
  uint32_t i = 0;
  for (const std::string& f : ff::cpu_feature_names()) features.Set(i++, f);
  cpu.Set("features", features);
  Napi::Object scores = Napi::Object::New(env);
  for (int v = 0; v < ff::kVariantCount; ++v) scores.Set(ff::variant_name(ff::Variant(v)), ff::variant_score(ff::Variant(v)));
  cpu.Set("variantScores", scores);
  o.Set("cpu", cpu);
  Napi::Object knobs = Napi::Object::New(env);
  auto list = [&](std::initializer_list<std::pair<const char*, bool>> values) {
    Napi::Array a = Napi::Array::New(env);
    uint32_t n = 0;
    for (auto& [name, on] : values)
      if (on) a.Set(n++, name);
    return a;
  };
  using ff::AttentionKind;
  using ff::LinearKind;
  knobs.Set("attention", list({{"dense", ff::knob_supported(AttentionKind::Dense)}, {"sage", ff::knob_supported(AttentionKind::Sage)},
                               {"sla", ff::knob_supported(AttentionKind::Sla)}}));
  knobs.Set("linear", list({{"fp32", ff::knob_supported(LinearKind::Fp32)}, {"bf16", ff::knob_supported(LinearKind::Bf16)},
                            {"w8a8", ff::knob_supported(LinearKind::W8a8)}}));
  knobs.Set("sampler", list({{"euler", true}, {"rcm", true}}));
  knobs.Set("weights", list({{"dit", true}, {"student", true}}));
  knobs.Set("teaCache", ff::tea_cache_supported());
  o.Set("knobs", knobs);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  NativeModel::Init(env);
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
  exports.Set("capabilities", Napi::Function::New(env, Capabilities));
  return exports;
}

}  // namespace

NODE_API_MODULE(framefleet_native, Init)
