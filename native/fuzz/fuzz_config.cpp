// libFuzzer target for config.json parsing: any text must parse into a range-checked config or
// raise ff::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    ff::parse_model_config("config.json", std::string(reinterpret_cast<const char*>(data), size));
  } catch (const ff::Error&) {
  }
  return 0;
}
