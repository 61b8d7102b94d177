#pragma once
/// \file
/// The overlapped input pipeline of the training stages (docs/method.md §19): while step s
/// computes, the batches of steps s+1 … s+L are decoded and noised on L loader threads.
/// A batch is a function of its step alone (the epoch's permutation, the rank's slice and
/// the counter-based noise of dualrs/rng/noise.h), so the batches, their order and the
/// trained weights are the same for every L, and the same as building each batch in turn.

#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <optional>
#include <utility>

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
/// time, each on its own loader thread (data::LoaderThreadScope); next() returns them in
/// order. threads = 0 builds each batch inside next(), with no overlap (the reference the
/// benchmark compares with). `make` must be safe to call from several threads at once and
/// must not read state the caller changes while batches are in flight.
template <typename Batch>
class BatchPrefetcher {
 public:
  BatchPrefetcher(std::int64_t steps, int threads, std::function<Batch(std::int64_t)> make)
      : steps_(steps), threads_(threads), make_(std::move(make)) {
    DUALRS_CHECK(threads >= 0, Error, "BatchPrefetcher: threads must be >= 0, got ", threads);
    while (threads_ > 0 && launched_ < steps_ && static_cast<int>(pending_.size()) < threads_) launch();
  }
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;
  /// Waits for the batches still being built (their results are dropped).
  ~BatchPrefetcher() {
    for (auto& f : pending_) {
      if (f.valid()) f.wait();
    }
  }

  /// The next step's batch. \throws what `make` threw for that step (later steps may still
  /// be built), or Error when every step has been taken.
  Batch next() {
    DUALRS_CHECK(taken_ < steps_, Error, "BatchPrefetcher: all ", steps_, " batches were taken");
    if (threads_ == 0) return make_(taken_++);
    std::future<Batch> front = std::move(pending_.front());
    pending_.pop_front();
    ++taken_;
    // The next build starts once this one is done, so that at most `threads` run at a time.
    std::optional<Batch> batch;
    std::exception_ptr failed;
    try {
      batch.emplace(front.get());
    } catch (...) {
      failed = std::current_exception();
    }
    if (launched_ < steps_) launch();
    if (failed) std::rethrow_exception(failed);
    return std::move(*batch);
  }

 private:
  void launch() {
    const std::int64_t step = launched_++;
    pending_.push_back(std::async(std::launch::async, [this, step] {
      data::LoaderThreadScope loader;
      return make_(step);
    }));
  }

  std::int64_t steps_;
  int threads_;
  std::function<Batch(std::int64_t)> make_;
  std::deque<std::future<Batch>> pending_;
  std::int64_t launched_ = 0;
  std::int64_t taken_ = 0;
};

}  // namespace dualrs::train
