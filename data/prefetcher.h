// Ordered background prefetching for the batch loaders (speech_loader, image_loader): worker
// threads compute items k, k+1, ... of an endless sequence ahead of the consumer by calling a
// pure function produce(k), and next() hands them out strictly in order. Threads only decide
// when an item is computed, never what it holds, so the sequence does not depend on the number
// of workers or on timing, and seek(k) resumes exactly. Header-only (a template). Part of data/.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace cw::data {

struct PrefetchStats {
  int64_t batches = 0;           // items returned by next()
  double wait_seconds = 0.0;     // time the consumer spent inside next()
  double produce_seconds = 0.0;  // time spent computing items, summed over threads
};

template <class Item>
class OrderedPrefetcher {
 public:
  // num_workers 0: next() computes the item itself. depth: items prepared ahead (>= 1).
  OrderedPrefetcher(std::function<Item(int64_t)> produce, int num_workers, int64_t depth)
      : produce_(std::move(produce)), num_workers_(num_workers), depth_(depth) {}
  ~OrderedPrefetcher() { stop_workers(); }
  OrderedPrefetcher(const OrderedPrefetcher&) = delete;
  OrderedPrefetcher& operator=(const OrderedPrefetcher&) = delete;

  // Item position(), then advances. Rethrows an error raised while producing it. One consumer.
  Item next() {
    const auto t0 = std::chrono::steady_clock::now();
    if (num_workers_ == 0) {
      Item item = produce_(next_consume_);
      std::lock_guard<std::mutex> lock(mutex_);
      ++next_consume_;
      ++stats_.batches;
      const double took = seconds_since(t0);
      stats_.wait_seconds += took;
      stats_.produce_seconds += took;
      return item;
    }
    if (workers_.empty()) start_workers();  // lazily, so a loader that is only seek()ed costs nothing
    std::unique_lock<std::mutex> lock(mutex_);
    consume_cv_.wait(lock, [&] { return ready_.count(next_consume_) != 0; });
    auto node = ready_.extract(next_consume_);
    ++next_consume_;
    ++stats_.batches;
    stats_.wait_seconds += seconds_since(t0);
    lock.unlock();
    produce_cv_.notify_all();
    if (node.mapped().error) std::rethrow_exception(node.mapped().error);
    return std::move(node.mapped().item);
  }

  // The next next() returns item k. In-flight items finish; they and every prepared one are dropped.
  void seek(int64_t k) {
    stop_workers();
    std::lock_guard<std::mutex> lock(mutex_);
    ready_.clear();
    next_consume_ = next_produce_ = k;
  }

  int64_t position() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return next_consume_;
  }
  PrefetchStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  struct Prepared {
    Item item;
    std::exception_ptr error;
  };

  static double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  void start_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = false;
    }
    for (int t = 0; t < num_workers_; ++t) workers_.emplace_back([this] { worker_loop(); });
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    produce_cv_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

  void worker_loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      produce_cv_.wait(lock, [&] { return stop_ || next_produce_ < next_consume_ + depth_; });
      if (stop_) return;
      const int64_t k = next_produce_++;
      lock.unlock();
      const auto t0 = std::chrono::steady_clock::now();
      Prepared p;
      try {
        p.item = produce_(k);
      } catch (...) {
        p.error = std::current_exception();
      }
      const double took = seconds_since(t0);
      lock.lock();
      stats_.produce_seconds += took;
      ready_.emplace(k, std::move(p));
      consume_cv_.notify_all();
    }
  }

  std::function<Item(int64_t)> produce_;
  int num_workers_;
  int64_t depth_;

  mutable std::mutex mutex_;
  std::condition_variable produce_cv_, consume_cv_;
  int64_t next_consume_ = 0, next_produce_ = 0;
  std::map<int64_t, Prepared> ready_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
  PrefetchStats stats_;
};

}  // namespace cw::data
