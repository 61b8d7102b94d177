#pragma once
/// \file
/// The overlapped input pipeline of the training stages (docs/method.md §19): while step s
/// computes, the batches of steps s+1 … s+L are decoded and noised on L loader threads.
/// A batch is a function of its step alone (the epoch's permutation, the rank's slice and
/// the counter-based noise of dualrs/rng/noise.h), so the batches, their order and the
/// trained weights are the same for every L, and the same as building each batch in turn.

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "dualrs/core/error.h"
#include "dualrs/data/parallel.h"

namespace dualrs::train {

/// The loader threads of a rank when its config gives none: half the CPUs this process may
/// run on (its affinity mask, which Slurm's --cpus-per-task sets), between 1 and 4.
int default_loader_threads();

/// /…/loader_threads of a trainer config: the value given (>= 1), or default_loader_threads()
/// for 0 (not given).
int loader_threads_of(std::int64_t configured);

/// Builds `make(0)`, `make(1)`, … `make(steps − 1)` ahead of their use, up to `threads` at a
/// time, on `threads` loader threads (data::LoaderThreadScope) started once per prefetcher;
/// next() returns them in order. threads = 0 builds each batch inside next(), with no overlap
/// (the reference the benchmark compares with). `make` must be safe to call from several
/// threads at once and must not read state the caller changes while batches are in flight.
/// The threads live as long as the prefetcher: a thread that is new to LibTorch makes LibTorch
/// set up its thread pools again on its first parallel operation (in 1.13 it re-creates its
/// pthreadpool), which, once per batch, had cost train-estimator a sixth of its time.
template <typename Batch>
class BatchPrefetcher {
 public:
  BatchPrefetcher(std::int64_t steps, int threads, std::function<Batch(std::int64_t)> make)
      : steps_(steps), threads_(threads), make_(std::move(make)) {
    DUALRS_CHECK(threads >= 0, Error, "BatchPrefetcher: threads must be >= 0, got ", threads);
    const auto workers = static_cast<int>(std::min<std::int64_t>(threads_, steps_));
    for (int t = 0; t < workers; ++t) workers_.emplace_back([this] { work(); });
  }
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;
  /// Waits for the batches still being built (their results are dropped).
  ~BatchPrefetcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  /// The next step's batch. \throws what `make` threw for that step (later steps may still
  /// be built), or Error when every step has been taken.
  Batch next() {
    DUALRS_CHECK(taken_ < steps_, Error, "BatchPrefetcher: all ", steps_, " batches were taken");
    if (threads_ == 0) return make_(taken_++);
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return done_.count(taken_) != 0; });
    Built built = std::move(done_.at(taken_));
    done_.erase(taken_);
    ++taken_;  // the next build may start: at most `threads` are in flight
    lock.unlock();
    changed_.notify_all();
    if (built.failed) std::rethrow_exception(built.failed);
    return std::move(*built.batch);
  }

 private:
  struct Built {
    std::optional<Batch> batch;
    std::exception_ptr failed;
  };

  // A loader thread: takes the next step to build while fewer than `threads` steps are built
  // or being built ahead of the caller.
  void work() {
    data::LoaderThreadScope loader;
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] { return stopping_ || launched_ >= steps_ || launched_ < taken_ + threads_; });
      if (stopping_ || launched_ >= steps_) return;
      const std::int64_t step = launched_++;
      lock.unlock();
      Built built;
      try {
        built.batch.emplace(make_(step));
      } catch (...) {
        built.failed = std::current_exception();
      }
      lock.lock();
      done_.emplace(step, std::move(built));
      changed_.notify_all();
    }
  }

  std::int64_t steps_;
  int threads_;
  std::function<Batch(std::int64_t)> make_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::int64_t, Built> done_;  // built, not yet taken
  std::int64_t launched_ = 0;            // steps handed to a loader thread
  std::int64_t taken_ = 0;               // steps returned by next()
  bool stopping_ = false;
};

}  // namespace dualrs::train
