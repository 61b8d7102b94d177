#include "dualrs/dist/world.h"

#include <cstdlib>

#include "dualrs/core/error.h"

namespace dualrs::dist {

World single_process_world() {
  for (const char* name : {"SLURM_STEP_NUM_TASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && std::atoi(value) > 1) {
      DUALRS_THROW(CommError, "launched as one of ", value, " tasks ($", name,
                   ") but this command runs single-process: every copy would process the whole dataset. "
                   "Run it as a single task.");
    }
  }
  return World{};
}

}  // namespace dualrs::dist
