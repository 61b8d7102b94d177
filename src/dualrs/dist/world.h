#pragma once
/// \file
/// Where this process stands in a job: rank, size, local rank. This build runs one process;
/// the MPI-backed World arrives with the distributed-execution work (issue 4), behind the
/// same type, so callers already receive it as a parameter instead of asking a singleton.

#include <string>

namespace dualrs::dist {

struct World {
  int rank = 0;        ///< 0 .. size-1
  int size = 1;        ///< number of ranks
  int local_rank = 0;  ///< rank among the processes on this node
  bool is_root() const { return rank == 0; }
};

/// A single-process world. It refuses to run as a "silent singleton": when a launcher says
/// the step has several tasks ($SLURM_STEP_NUM_TASKS > 1, $OMPI_COMM_WORLD_SIZE > 1) but this
/// build has no MPI, every copy would process the whole dataset.
/// \throws CommError in that case.
World single_process_world();

}  // namespace dualrs::dist
