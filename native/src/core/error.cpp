#include "core/error.h"

namespace ff {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::ModelFormat: return "E_MODEL_FORMAT";
    case ErrorCode::BadRequest: return "E_BAD_REQUEST";
    case ErrorCode::Aborted: return "E_ABORTED";
    case ErrorCode::OutOfMemory: return "E_OUT_OF_MEMORY";
    case ErrorCode::Numeric: return "E_NUMERIC";
    case ErrorCode::Internal: return "E_INTERNAL";
  }
  return "E_INTERNAL";
}

}  // namespace ff
