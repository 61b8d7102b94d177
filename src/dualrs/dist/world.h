#pragma once
/// \file
/// Where this process stands in a job (docs/cluster.md §2): rank, size, local rank (among the
/// ranks on this node, from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) — Slurm's srun sets no
/// OMPI_COMM_WORLD_LOCAL_RANK) and the device that local rank uses. Made by MpiEnvironment in
/// the executable and passed down by parameter.

#include <string>

namespace dualrs::dist {

struct World {
  int rank = 0;        ///< 0 .. size-1
  int size = 1;        ///< number of ranks
  int local_rank = 0;  ///< rank among the ranks on this node, 0 .. local_size-1
  int local_size = 1;  ///< ranks on this node
  std::string host;    ///< this node's host name
  bool is_root() const { return rank == 0; }
  /// Prefix for messages of this rank: "" on rank 0, "[rank R] " elsewhere.
  std::string tag() const;
};

/// The device a rank runs models on. `requested` is a config's device: "cuda" becomes
/// "cuda:<local_rank mod visible_cuda_devices>" (one GPU per local rank); "cpu" and explicit
/// "cuda:N" are kept. \throws ConfigError at `pointer` (the config's device entry) when
/// "cuda" is requested and no device is visible, or when `requested` is not a device
/// (parse_device, core/config.h).
std::string rank_device(const World& world, const std::string& requested, int visible_cuda_devices,
                        const std::string& pointer = "/model/device");

/// The silent-singleton guard: a launcher whose MPI/PMIx wiring is broken starts N copies
/// that each believe they are "rank 0 of 1" and each process the whole dataset. When this
/// world has one rank but the launcher says the step has more ($SLURM_STEP_NUM_TASKS,
/// $OMPI_COMM_WORLD_SIZE or $PMI_SIZE > 1), this throws CommError naming the variable.
void check_not_silent_singleton(const World& world);

/// `--expect-world-size N`: \throws ConfigError ("command line", "--expect-world-size") when
/// the world does not have exactly `expected` ranks. `expected` <= 0 means "any".
void check_expected_world_size(const World& world, int expected);

}  // namespace dualrs::dist
