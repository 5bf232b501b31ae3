// A fixed pool using every core the process may run on (FRAMEFLEET_THREADS overrides).
// parallel_for splits [0, n) into chunks run by the workers and the calling thread. A
// parallel_for issued from inside a pool task runs serially, so kernels may nest freely.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ff {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // The process-wide pool.
  static ThreadPool& global();
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // fn(begin, end) over chunks of at least `grain` items; returns when all are done. An exception
  // thrown by a chunk is rethrown here (the first one). Chunks shrink as the range runs out (each
  // takes the remaining items over twice the threads), so the threads finish close together
  // without many small chunks at the start; the boundaries depend only on n, grain and the
  // thread count, never on which thread takes a chunk.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

 private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex submit_mu_;  // one parallel_for at a time
  std::mutex mu_;
  std::condition_variable cv_work_, cv_done_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, grain_ = 1, next_ = 0, items_left_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

int default_thread_count();

}  // namespace ff
