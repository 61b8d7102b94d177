#include "dualrs/train/prefetch.h"

#include <sched.h>

#include <algorithm>
#include <thread>

namespace dualrs::train {

int default_loader_threads() {
  int cpus = 0;
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof mask, &mask) == 0) cpus = CPU_COUNT(&mask);
  if (cpus <= 0) cpus = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(cpus / 2, 1, 4);
}

int loader_threads_of(std::int64_t configured) {
  DUALRS_CHECK(configured >= 0, Error, "loader_threads must be >= 1, got ", configured);
  return configured == 0 ? default_loader_threads() : static_cast<int>(std::min<std::int64_t>(configured, 64));
}

}  // namespace dualrs::train
