// Engine errors carry one of the codes the binding turns into JS error codes.
#pragma once
#include <stdexcept>
#include <string>

namespace ff {

enum class ErrorCode { ModelFormat, BadRequest, Aborted, OutOfMemory, Numeric, Internal };

// "E_MODEL_FORMAT", "E_BAD_REQUEST", ... as seen by JavaScript.
const char* error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

}  // namespace ff
