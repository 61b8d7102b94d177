#include "dualrs/dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <climits>
#include <exception>

#include "dualrs/core/error.h"
#include "dualrs/dist/agreement.h"

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 10, 3)
#error "dualrs needs NCCL >= 2.10.3 (ncclAvg)"
#endif

namespace dualrs::dist {
namespace {

/// Translates an NCCL return code (flashlight's ncclCheck): the generic text and, where the
/// communicator exists, NCCL's last detailed message.
void check(ncclResult_t result, const char* what, ncclComm_t comm = nullptr) {
  if (result == ncclSuccess) return;
  std::string detail;
  if (const char* last = ncclGetLastError(comm); last != nullptr && *last != '\0') detail = std::string(" (") + last + ")";
  DUALRS_THROW(CommError, what, " failed: ", ncclGetErrorString(result), detail);
}

void check_cuda(cudaError_t result, const char* what) {
  if (result != cudaSuccess) DUALRS_THROW(CommError, what, " failed: ", cudaGetErrorString(result));
}

ncclRedOp_t to_nccl(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kMin: return ncclMin;
    case ReduceOp::kMean: return ncclAvg;
  }
  DUALRS_THROW(CommError, "unknown ReduceOp");
}

}  // namespace

bool nccl_built() { return true; }

NcclVersions nccl_versions() {
  NcclVersions v;
  v.header = NCCL_VERSION_CODE;
  check(ncclGetVersion(&v.runtime), "ncclGetVersion");
  return v;
}

struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
  int rank = 0;
  int size = 1;
  int device = 0;
  NcclVersions versions;
};

NcclCommunicator::NcclCommunicator(Communicator& bootstrap, int device) : impl_(std::make_unique<Impl>()) {
  impl_->rank = bootstrap.rank();
  impl_->size = bootstrap.size();
  impl_->device = device;
  // Every step can fail on one rank only (no device, a driver problem): each rank first does
  // what it can alone and the ranks agree before the collective ncclCommInitRank.
  ncclUniqueId id{};
  std::exception_ptr local;
  try {
    impl_->versions = nccl_versions();
    int devices = 0;
    check_cuda(cudaGetDeviceCount(&devices), "cudaGetDeviceCount");
    DUALRS_CHECK(device >= 0 && device < devices, CommError, "rank ", impl_->rank, " was given CUDA device ", device,
                 " but ", devices, " device(s) are visible");
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    if (impl_->rank == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
  } catch (...) {
    local = std::current_exception();
  }
  agree_on_failures(bootstrap, local, describe_standard);
  bootstrap.broadcast(&id, sizeof id, 0);
  local = nullptr;
  try {
    check(ncclCommInitRank(&impl_->comm, impl_->size, id, impl_->rank), "ncclCommInitRank");
  } catch (...) {
    local = std::current_exception();
  }
  try {
    agree_on_failures(bootstrap, local, describe_standard);
  } catch (...) {
    if (impl_->comm != nullptr) ncclCommAbort(impl_->comm);
    throw;
  }
}

NcclCommunicator::~NcclCommunicator() {
  if (impl_->comm != nullptr) ncclCommDestroy(impl_->comm);
}

int NcclCommunicator::rank() const { return impl_->rank; }
int NcclCommunicator::size() const { return impl_->size; }
int NcclCommunicator::device() const { return impl_->device; }
NcclVersions NcclCommunicator::versions() const { return impl_->versions; }

void NcclCommunicator::all_reduce(float* data, std::size_t count, ReduceOp op, void* stream) {
  check(ncclAllReduce(data, data, count, ncclFloat32, to_nccl(op), impl_->comm, static_cast<cudaStream_t>(stream)),
        "ncclAllReduce", impl_->comm);
}

void NcclCommunicator::broadcast(void* data, std::size_t bytes, int root, void* stream) {
  check(ncclBroadcast(data, data, bytes, ncclUint8, root, impl_->comm, static_cast<cudaStream_t>(stream)),
        "ncclBroadcast", impl_->comm);
}

}  // namespace dualrs::dist
