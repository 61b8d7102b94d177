#pragma once
/// \file
/// One thread for OpenBLAS inside dualrs. LibTorch runs its CPU kernels, oneDNN's convolutions
/// included, on its own OpenMP threads, but a LibTorch linked against the pthreads build of
/// OpenBLAS (Debian's `libopenblas0-pthread`) hands each matrix multiply to a second pool of
/// OpenBLAS threads. The two pools then compete for the same cores — OpenMP threads spin at
/// their barriers while OpenBLAS's run — and a frozen `mnist_cnn` forward loses a third of its
/// speed on two cores (docs/method.md §14). With one OpenBLAS thread the multiply runs on the
/// calling thread. A LibTorch built with MKL or without OpenBLAS is not affected (nothing done).

#include <string>

namespace dualrs::model {

/// What limit_openblas_threads did.
struct BlasThreads {
  bool openblas = false;  ///< OpenBLAS is loaded in this process
  bool user_set = false;  ///< $OPENBLAS_NUM_THREADS (or $GOTO_NUM_THREADS) was set: left as it is
  int threads = 0;        ///< OpenBLAS's thread count afterwards (0 when not loaded)
};

/// Sets OpenBLAS's thread count to `threads` (≥ 1) unless $OPENBLAS_NUM_THREADS or
/// $GOTO_NUM_THREADS is set (then the user's choice stands). Finds OpenBLAS by its exported
/// `openblas_set_num_threads` in the running process; never throws.
BlasThreads limit_openblas_threads(int threads = 1);

}  // namespace dualrs::model
