// NcclCommunicator in a build without NCCL (DUALRS_WITH_NCCL=OFF, or AUTO where CMake found
// none): the interface exists, so callers compile unchanged, and constructing one says why it
// cannot work (docs/style.md §9: a stub that throws "built without X").

#include "dualrs/core/error.h"
#include "dualrs/dist/nccl_communicator.h"

namespace dualrs::dist {

bool nccl_built() { return false; }

NcclVersions nccl_versions() { return {}; }

struct NcclCommunicator::Impl {};

NcclCommunicator::NcclCommunicator(Communicator&, int) {
  DUALRS_THROW(CommError, "NcclCommunicator: dualrs was built without NCCL (configure with DUALRS_WITH_NCCL=ON and "
               "NCCL installed, e.g. under /usr/local/cuda)");
}

NcclCommunicator::~NcclCommunicator() = default;

int NcclCommunicator::rank() const { return 0; }
int NcclCommunicator::size() const { return 1; }
int NcclCommunicator::device() const { return -1; }
NcclVersions NcclCommunicator::versions() const { return {}; }

void NcclCommunicator::all_reduce(float*, std::size_t, ReduceOp, void*) {
  DUALRS_THROW(CommError, "NcclCommunicator: dualrs was built without NCCL");
}

void NcclCommunicator::broadcast(void*, std::size_t, int, void*) {
  DUALRS_THROW(CommError, "NcclCommunicator: dualrs was built without NCCL");
}

}  // namespace dualrs::dist
