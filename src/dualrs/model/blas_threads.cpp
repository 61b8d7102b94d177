#include "dualrs/model/blas_threads.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>

namespace dualrs::model {

BlasThreads limit_openblas_threads(int threads) {
  BlasThreads out;
  using SetFn = void (*)(int);
  using GetFn = int (*)();
  // OpenBLAS is a dependency of Debian's libtorch_cpu, so already loaded: look it up in the
  // process rather than link against it.
  auto set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  auto get = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (set == nullptr || get == nullptr) return out;
  out.openblas = true;
  for (const char* name : {"OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') out.user_set = true;
  }
  if (!out.user_set) set(std::max(1, threads));
  out.threads = get();
  return out;
}

}  // namespace dualrs::model
