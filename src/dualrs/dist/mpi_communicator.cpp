#include "dualrs/dist/mpi_communicator.h"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <thread>

#include "dualrs/core/error.h"

namespace dualrs::dist {
namespace {

constexpr int kNoticeTag = 7101;

std::string mpi_error_text(int code) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<std::size_t>(length));
}

/// Translates an MPI return code (the communicators use MPI_ERRORS_RETURN).
void check(int code, const char* what) {
  if (code != MPI_SUCCESS) DUALRS_THROW(CommError, what, " failed: ", mpi_error_text(code));
}

/// Waits for `request` by testing it with a growing sleep between tests: collectives at
/// phase boundaries may wait minutes for a slow rank, and MPI's own blocking wait would spin.
void polite_wait(MPI_Request& request, const char* what) {
  auto pause = std::chrono::microseconds(50);
  constexpr auto kMaxPause = std::chrono::milliseconds(10);
  for (int done = 0;;) {
    check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), what);
    if (done) return;
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, kMaxPause);
  }
}

MPI_Op to_mpi(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return MPI_SUM;
    case ReduceOp::kMax: return MPI_MAX;
    case ReduceOp::kMin: return MPI_MIN;
    case ReduceOp::kMean: break;  // MPI has no mean: only the float all-reduce offers it
  }
  DUALRS_THROW(CommError, "all_reduce: ReduceOp::kMean is for float buffers only");
}

int checked_int(std::size_t n, const char* what) {
  if (n > static_cast<std::size_t>(INT_MAX)) DUALRS_THROW(CommError, what, ": ", n, " elements exceed MPI's int count");
  return static_cast<int>(n);
}

}  // namespace

struct MpiCommunicator::Impl {
  MPI_Comm comm = MPI_COMM_NULL;     // collectives
  MPI_Comm notices = MPI_COMM_NULL;  // point-to-point notices
  int rank = 0;
  int size = 1;
  struct Pending {
    std::array<std::int64_t, 2> message{};
    MPI_Request request = MPI_REQUEST_NULL;
  };
  std::deque<Pending> sent;  // deque: elements never move, so their buffers stay valid

  /// Forgets sends that have completed, oldest first.
  void reap() {
    while (!sent.empty()) {
      int done = 0;
      check(MPI_Test(&sent.front().request, &done, MPI_STATUS_IGNORE), "MPI_Test (notice)");
      if (!done) return;
      sent.pop_front();
    }
  }

  void all_reduce(void* data, std::size_t count, MPI_Datatype type, ReduceOp op) {
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, checked_int(count, "all_reduce"), type, to_mpi(op), comm, &request),
          "MPI_Iallreduce");
    polite_wait(request, "MPI_Iallreduce");
  }

  template <typename T>
  std::vector<T> gather_one(T value, MPI_Datatype type, int root) {
    std::vector<T> out(rank == root ? static_cast<std::size_t>(size) : 0);
    MPI_Request request;
    check(MPI_Igather(&value, 1, type, out.data(), 1, type, root, comm, &request), "MPI_Igather");
    polite_wait(request, "MPI_Igather");
    return out;
  }
};

MpiCommunicator::MpiCommunicator(const void* mpi_comm) : impl_(std::make_unique<Impl>()) {
  const MPI_Comm parent = *static_cast<const MPI_Comm*>(mpi_comm);
  check(MPI_Comm_dup(parent, &impl_->comm), "MPI_Comm_dup");
  check(MPI_Comm_dup(parent, &impl_->notices), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(impl_->comm, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(impl_->notices, MPI_ERRORS_RETURN);
  check(MPI_Comm_rank(impl_->comm, &impl_->rank), "MPI_Comm_rank");
  check(MPI_Comm_size(impl_->comm, &impl_->size), "MPI_Comm_size");
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  MPI_Comm_free(&impl_->notices);
  MPI_Comm_free(&impl_->comm);
}

int MpiCommunicator::rank() const { return impl_->rank; }
int MpiCommunicator::size() const { return impl_->size; }

void MpiCommunicator::barrier() {
  MPI_Request request;
  check(MPI_Ibarrier(impl_->comm, &request), "MPI_Ibarrier");
  polite_wait(request, "MPI_Ibarrier");
}

void MpiCommunicator::all_reduce(std::int64_t* data, std::size_t count, ReduceOp op) {
  impl_->all_reduce(data, count, MPI_INT64_T, op);
}

void MpiCommunicator::all_reduce(double* data, std::size_t count, ReduceOp op) {
  impl_->all_reduce(data, count, MPI_DOUBLE, op);
}

void MpiCommunicator::all_reduce(float* data, std::size_t count, ReduceOp op) {
  const bool mean = op == ReduceOp::kMean;
  check(MPI_Allreduce(MPI_IN_PLACE, data, checked_int(count, "all_reduce"), MPI_FLOAT, to_mpi(mean ? ReduceOp::kSum : op),
                      impl_->comm),
        "MPI_Allreduce");
  if (mean && impl_->size > 1) {
    const auto n = static_cast<float>(impl_->size);
    for (std::size_t i = 0; i < count; ++i) data[i] /= n;
  }
}

void MpiCommunicator::broadcast(void* data, std::size_t bytes, int root) {
  MPI_Request request;
  check(MPI_Ibcast(data, checked_int(bytes, "broadcast"), MPI_BYTE, root, impl_->comm, &request), "MPI_Ibcast");
  polite_wait(request, "MPI_Ibcast");
}

std::vector<std::int64_t> MpiCommunicator::gather(std::int64_t value, int root) {
  return impl_->gather_one(value, MPI_INT64_T, root);
}

std::vector<double> MpiCommunicator::gather(double value, int root) { return impl_->gather_one(value, MPI_DOUBLE, root); }

std::vector<std::string> MpiCommunicator::gather(const std::string& text, int root) {
  const int length = checked_int(text.size(), "gather");
  std::vector<std::int64_t> lengths = gather(static_cast<std::int64_t>(length), root);
  std::vector<int> counts, offsets;
  std::string all;
  if (impl_->rank == root) {
    int total = 0;
    for (std::int64_t l : lengths) {
      offsets.push_back(total);
      counts.push_back(static_cast<int>(l));
      total += static_cast<int>(l);
    }
    all.resize(static_cast<std::size_t>(total));
  }
  MPI_Request request;
  check(MPI_Igatherv(text.data(), length, MPI_CHAR, all.data(), counts.data(), offsets.data(), MPI_CHAR, root,
                     impl_->comm, &request),
        "MPI_Igatherv");
  polite_wait(request, "MPI_Igatherv");
  std::vector<std::string> out;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    out.push_back(all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(counts[r])));
  }
  return out;
}

void MpiCommunicator::post(int dest, NoticeKind kind, std::int64_t value) {
  impl_->reap();
  Impl::Pending& p = impl_->sent.emplace_back();
  p.message = {static_cast<std::int64_t>(kind), value};
  check(MPI_Isend(p.message.data(), 2, MPI_INT64_T, dest, kNoticeTag, impl_->notices, &p.request), "MPI_Isend (notice)");
}

std::optional<Notice> MpiCommunicator::poll() {
  int arrived = 0;
  MPI_Status status;
  check(MPI_Iprobe(MPI_ANY_SOURCE, kNoticeTag, impl_->notices, &arrived, &status), "MPI_Iprobe (notice)");
  if (!arrived) return std::nullopt;
  std::array<std::int64_t, 2> message{};
  check(MPI_Recv(message.data(), 2, MPI_INT64_T, status.MPI_SOURCE, kNoticeTag, impl_->notices, MPI_STATUS_IGNORE),
        "MPI_Recv (notice)");
  return Notice{status.MPI_SOURCE, static_cast<NoticeKind>(message[0]), message[1]};
}

void MpiCommunicator::complete_posts() {
  for (auto& p : impl_->sent) polite_wait(p.request, "MPI_Isend (notice)");
  impl_->sent.clear();
}

void MpiCommunicator::abort(int exit_code, const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
}

// --- MpiEnvironment ---------------------------------------------------------------------------

bool launched_by_mpi_launcher() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

namespace {
std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}
}  // namespace

MpiEnvironment::MpiEnvironment(int* argc, char*** argv) {
  world_.host = host_name();
  if (!launched_by_mpi_launcher()) {
    communicator_ = std::make_unique<SingleProcessCommunicator>();
    return;
  }
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  uses_mpi_ = true;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm world = MPI_COMM_WORLD;
  communicator_ = std::make_unique<MpiCommunicator>(&world);
  world_.rank = communicator_->rank();
  world_.size = communicator_->size();
  MPI_Comm local = MPI_COMM_NULL;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_.rank, MPI_INFO_NULL, &local),
        "MPI_Comm_split_type");
  check(MPI_Comm_rank(local, &world_.local_rank), "MPI_Comm_rank (node)");
  check(MPI_Comm_size(local, &world_.local_size), "MPI_Comm_size (node)");
  MPI_Comm_free(&local);
}

MpiEnvironment::~MpiEnvironment() {
  communicator_.reset();  // frees the duplicated communicators before MPI_Finalize
  if (uses_mpi_) MPI_Finalize();
}

std::string MpiEnvironment::library_version() const {
  if (!uses_mpi_) return "none";
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string version(text, static_cast<std::size_t>(length));
  return version.substr(0, version.find_first_of(",\n"));
}

}  // namespace dualrs::dist
