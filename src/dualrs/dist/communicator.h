#pragma once
/// \file
/// The ranks of a job talking to each other (docs/cluster.md §2; docs/architecture.md
/// §8). The library receives a Communicator by parameter — no singleton, no global
/// MPI state — so every routine runs unchanged with one process (SingleProcessCommunicator)
/// or under `mpirun`/`srun` (MpiCommunicator, dualrs/dist/mpi_communicator.h).
///
/// Two kinds of traffic:
///  - collectives over raw host buffers (barrier, agreement, broadcast, all-reduce, gather):
///    every rank calls them in the same order. The MPI implementation waits for them
///    politely (test + short sleeps), so ranks idling at a phase boundary do not take CPU
///    from ranks still working on the same cores.
///  - notices: tiny point-to-point messages (stop requests, progress counts) that the
///    sender never waits for and the receiver polls at its own pace; see post() / poll().
///
/// This layer has no Torch: buffers are raw pointers. Data-parallel training reduces float
/// gradient buckets in host memory here (all_reduce(float*, ...)); CUDA device buffers go
/// through NcclCommunicator (dualrs/dist/nccl_communicator.h), bootstrapped over this one.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dualrs::dist {

/// Reduction of an all-reduce, element-wise over ranks.
enum class ReduceOp {
  kSum,
  kMax,
  kMin,
  kMean,  ///< sum / size(); float buffers only (MpiCommunicator refuses it for int64 and double)
};

/// What a notice says (see Communicator::post).
enum class NoticeKind : std::int64_t {
  kStop = 1,      ///< "stop at your next example boundary" (preemption or a failure elsewhere)
  kProgress = 2,  ///< value = examples the sender has finished in this run (monotone)
  kDone = 3,      ///< to rank 0: value = examples the sender finished; it has no work left
  kRelease = 4,   ///< from rank 0: every rank is done, meet in the closing collective
};

/// One received notice.
struct Notice {
  int source = 0;
  NoticeKind kind = NoticeKind::kStop;
  std::int64_t value = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  /// This process's rank, 0 .. size()-1.
  virtual int rank() const = 0;
  /// Number of ranks.
  virtual int size() const = 0;
  bool is_root() const { return rank() == 0; }

  /// Waits until every rank has called barrier(). \throws CommError.
  virtual void barrier() = 0;

  /// Element-wise reduction over ranks, result on every rank, in place. `count` equal on
  /// every rank. \throws CommError.
  virtual void all_reduce(std::int64_t* data, std::size_t count, ReduceOp op) = 0;
  virtual void all_reduce(double* data, std::size_t count, ReduceOp op) = 0;
  /// Float buffers in host memory (gradient buckets of data-parallel training), any
  /// ReduceOp. Unlike the other collectives this one blocks in MPI (MPI_Allreduce) rather
  /// than waiting politely: training steps keep the ranks in step, and large buckets then
  /// progress at full speed. The result of kSum/kMean depends on the reduction order MPI
  /// chooses (float addition is not associative). \throws CommError.
  virtual void all_reduce(float* data, std::size_t count, ReduceOp op) = 0;

  /// Copies `bytes` bytes at `data` from `root` to every rank (same `bytes` everywhere).
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;

  /// One value per rank, in rank order, on `root`; an empty vector on the other ranks.
  virtual std::vector<std::int64_t> gather(std::int64_t value, int root) = 0;
  virtual std::vector<double> gather(double value, int root) = 0;
  /// Strings of any length (e.g. error messages, host names).
  virtual std::vector<std::string> gather(const std::string& text, int root) = 0;

  /// Sends a notice to rank `dest` without waiting for it to be received. Notices from one
  /// sender arrive in the order they were posted. A rank may post to itself.
  virtual void post(int dest, NoticeKind kind, std::int64_t value) = 0;
  /// The next notice that has arrived for this rank, if any; never blocks.
  virtual std::optional<Notice> poll() = 0;
  /// Waits until every notice this rank posted has left it (call before finishing, after
  /// the receivers have been told to drain theirs).
  virtual void complete_posts() = 0;

  /// Ends the whole job at once after printing `message` (MPI_Abort): for the unexpected,
  /// so that no rank is left waiting in a collective.
  [[noreturn]] virtual void abort(int exit_code, const std::string& message) = 0;

  // ---- Conveniences built on the primitives above ---------------------------------------

  /// True when `ok` is true on every rank.
  bool all_agree(bool ok);
  /// True when `flag` is true on some rank.
  bool any_of(bool flag);
  /// Sum / max / min of one value over ranks.
  std::int64_t all_reduce(std::int64_t value, ReduceOp op);
  /// Broadcasts a string of any length from `root` (its value is replaced elsewhere).
  void broadcast(std::string& text, int root);
  /// Broadcasts a vector of int64 of any length from `root`.
  void broadcast(std::vector<std::int64_t>& values, int root);
};

/// A job of one process: collectives are identities, notices go to this same process.
class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void barrier() override {}
  void all_reduce(std::int64_t*, std::size_t, ReduceOp) override {}
  void all_reduce(double*, std::size_t, ReduceOp) override {}
  void all_reduce(float*, std::size_t, ReduceOp) override {}
  void broadcast(void*, std::size_t, int root) override;
  std::vector<std::int64_t> gather(std::int64_t value, int root) override;
  std::vector<double> gather(double value, int root) override;
  std::vector<std::string> gather(const std::string& text, int root) override;
  void post(int dest, NoticeKind kind, std::int64_t value) override;
  std::optional<Notice> poll() override;
  void complete_posts() override {}
  [[noreturn]] void abort(int exit_code, const std::string& message) override;

  using Communicator::all_reduce;
  using Communicator::broadcast;

 private:
  std::vector<Notice> inbox_;
  std::size_t next_ = 0;
};

}  // namespace dualrs::dist
