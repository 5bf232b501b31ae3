// Error checking for every CUDA runtime and cuBLAS call of the CUDA backend: a failure throws
// std::runtime_error naming the call, the file and line, and the driver's message.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace ff::cuda {

[[noreturn]] inline void throwCuda(const char* what, const char* file, int line, const std::string& msg) {
  throw std::runtime_error(std::string("CUDA: ") + what + " failed at " + file + ":" + std::to_string(line) + ": " + msg);
}

inline void checkCuda(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess) throwCuda(what, file, line, cudaGetErrorString(e));
}

inline void checkCublas(cublasStatus_t s, const char* what, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS) throwCuda(what, file, line, std::string("cuBLAS status ") + std::to_string(static_cast<int>(s)));
}

}  // namespace ff::cuda

#define FF_CUDA(call) ::ff::cuda::checkCuda((call), #call, __FILE__, __LINE__)
#define FF_CUBLAS(call) ::ff::cuda::checkCublas((call), #call, __FILE__, __LINE__)
// After a kernel launch: the launch error (bad configuration) is reported at once.
#define FF_CUDA_LAUNCHED(name) ::ff::cuda::checkCuda(cudaGetLastError(), name, __FILE__, __LINE__)
