#pragma once
/// \file
/// MPI implementation of Communicator, and the RAII object that initialises and finalises
/// MPI. Only the executable's main() (and the MPI test driver) creates an MpiEnvironment;
/// everything else receives its Communicator and World by parameter. <mpi.h> stays in the
/// .cpp files of this layer.

#include <memory>
#include <string>

#include "dualrs/dist/communicator.h"
#include "dualrs/dist/world.h"

namespace dualrs::dist {

/// Collectives and notices over a private duplicate of an MPI communicator. Collectives are
/// the non-blocking MPI-3 ones, waited for by testing with a backoff of short sleeps (50 µs
/// growing to 10 ms), so a rank idling at a phase boundary leaves its core to the ranks still
/// working. Notices use a second duplicate, so they never match collective traffic.
class MpiCommunicator final : public Communicator {
 public:
  /// \param mpi_comm points at an MPI_Comm (a type this header must not name), which is
  /// duplicated (MPI_Comm_dup, collective); the original is not owned. \throws CommError.
  explicit MpiCommunicator(const void* mpi_comm);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override;
  int size() const override;
  void barrier() override;
  void all_reduce(std::int64_t* data, std::size_t count, ReduceOp op) override;
  void all_reduce(double* data, std::size_t count, ReduceOp op) override;
  void all_reduce(float* data, std::size_t count, ReduceOp op) override;
  void broadcast(void* data, std::size_t bytes, int root) override;
  std::vector<std::int64_t> gather(std::int64_t value, int root) override;
  std::vector<double> gather(double value, int root) override;
  std::vector<std::string> gather(const std::string& text, int root) override;
  void post(int dest, NoticeKind kind, std::int64_t value) override;
  std::optional<Notice> poll() override;
  void complete_posts() override;
  [[noreturn]] void abort(int exit_code, const std::string& message) override;

  using Communicator::all_reduce;
  using Communicator::broadcast;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// True when a launcher started this process as part of a parallel job: Open MPI's mpirun
/// ($OMPI_COMM_WORLD_SIZE), PMIx ($PMIX_RANK, e.g. `srun --mpi=pmix`), PMI-1/2 ($PMI_RANK,
/// $PMI_SIZE) or a Slurm step ($SLURM_STEP_NUM_TASKS). Outside one, dualrs skips MPI_Init
/// (which as a singleton costs about half a second) and runs single-process.
bool launched_by_mpi_launcher();

/// Initialises MPI (MPI_Init_thread, MPI_THREAD_FUNNELED: only the main thread calls MPI)
/// when launched_by_mpi_launcher(), else provides a SingleProcessCommunicator; finalises MPI
/// when destroyed. Builds the World: rank, size, local rank and local size from
/// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), host name.
class MpiEnvironment {
 public:
  /// \throws CommError when MPI fails to initialise.
  MpiEnvironment(int* argc, char*** argv);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;

  /// Whether MPI was initialised (false: a single process without a launcher).
  bool uses_mpi() const { return uses_mpi_; }
  const World& world() const { return world_; }
  Communicator& communicator() { return *communicator_; }
  /// "Open MPI v4.1.4, ..." (MPI_Get_library_version, first line) or "none".
  std::string library_version() const;

 private:
  bool uses_mpi_ = false;
  World world_;
  std::unique_ptr<Communicator> communicator_;
};

}  // namespace dualrs::dist
