#pragma once
/// \file
/// The per-example loops of batch building (decoding, noise): LibTorch's at::parallel_for on
/// the thread that computes, a plain loop on the loader threads that build training batches
/// ahead (train/prefetch.h, docs/method.md §19). Those threads already run beside the step's
/// compute; an OpenMP team started from each of them would only fight it for the cores. Each
/// example's result depends on the example alone, so both give the same batch.

#include <cstdint>

#include <ATen/Parallel.h>

namespace dualrs::data {

/// Whether this thread is a loader thread (inside a LoaderThreadScope).
bool on_loader_thread();

/// Marks the current thread as a loader thread for its lifetime (RAII; nests).
class LoaderThreadScope {
 public:
  LoaderThreadScope();
  ~LoaderThreadScope();
  LoaderThreadScope(const LoaderThreadScope&) = delete;
  LoaderThreadScope& operator=(const LoaderThreadScope&) = delete;

 private:
  bool previous_;
};

/// f(begin', end') over sub-ranges covering [begin, end): at::parallel_for with `grain`, or
/// one call f(begin, end) on a loader thread.
template <typename F>
void parallel_ranges(std::int64_t begin, std::int64_t end, std::int64_t grain, const F& f) {
  if (on_loader_thread()) {
    if (begin < end) f(begin, end);
    return;
  }
  at::parallel_for(begin, end, grain, f);
}

}  // namespace dualrs::data
