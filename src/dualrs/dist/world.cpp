#include "dualrs/dist/world.h"

#include <cstdlib>

#include "dualrs/core/config.h"
#include "dualrs/core/error.h"

namespace dualrs::dist {

std::string World::tag() const { return rank == 0 ? std::string() : "[rank " + std::to_string(rank) + "] "; }

std::string rank_device(const World& world, const std::string& requested, int visible_cuda_devices,
                        const std::string& pointer) {
  if (!parse_device(requested, pointer).rank_local()) return requested;  // "cpu", "cuda:N"
  if (visible_cuda_devices < 1) {
    throw ConfigError("", pointer, "'cuda' requested but no CUDA device is visible to rank " +
                                               std::to_string(world.rank) + " on " + world.host);
  }
  return "cuda:" + std::to_string(world.local_rank % visible_cuda_devices);
}

void check_not_silent_singleton(const World& world) {
  if (world.size != 1) return;
  for (const char* name : {"SLURM_STEP_NUM_TASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && std::atoi(value) > 1) {
      DUALRS_THROW(CommError, "the launcher started ", value, " tasks ($", name, "=", value,
                   ") but MPI sees a world of 1 rank: every copy would process the whole dataset. "
                   "Launch with 'srun --mpi=pmix' or 'mpirun' (a dualrs built against the same MPI), "
                   "or as a single task");
    }
  }
}

void check_expected_world_size(const World& world, int expected) {
  if (expected <= 0 || expected == world.size) return;
  throw ConfigError("command line", "--expect-world-size",
                    "expected " + std::to_string(expected) + " ranks but this job has " + std::to_string(world.size) +
                        (world.size == 1 ? " (was it started without mpirun/srun, or does srun lack --mpi=pmix?)" : ""));
}

}  // namespace dualrs::dist
