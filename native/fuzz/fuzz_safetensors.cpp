// libFuzzer target for the safetensors parser: any byte string must either parse into tensors
// whose every byte lies inside the input (checked by converting each one, under ASan) or raise
// ff::Error. Build and run: see docs/NATIVE.md "Fuzzing".
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    std::vector<ff::TensorInfo> tensors = ff::parse_safetensors("fuzz.safetensors", data, size);
    std::vector<float> out;
    for (const ff::TensorInfo& t : tensors) {
      if (t.dtype == ff::DType::I8 || t.nbytes > (size_t(1) << 24)) continue;
      out.resize(size_t(ff::shape_numel(t.shape)));
      ff::convert_to_f32("fuzz.safetensors", t, out.data());
    }
  } catch (const ff::Error&) {
  }
  return 0;
}
