// NcclCommunicator on real GPUs, with the CUDA runtime only (no Torch): device buffers from
// cudaMalloc, all-reduce (sum, mean = ncclAvg, max) and broadcast, results compared with the
// values computed on the host. CTest runs it under `mpirun -np 1` and `-np 2` (label `gpu`),
// one GPU per rank (device = local rank).
//
// Exit codes: 0 passed, 1 failed, 77 skipped — printed with the reason, e.g. no CUDA device
// (cudaGetDeviceCount fails or returns 0) or fewer devices than ranks on a node (NCCL needs
// one GPU per rank). Where a GPU exists and there are enough of them, the test always runs.

#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "dualrs/dist/agreement.h"
#include "dualrs/dist/mpi_communicator.h"
#include "dualrs/dist/nccl_communicator.h"

namespace {

constexpr int kSkip = 77;

int g_failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    ++g_failures;
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
  }
}

void cuda_check(cudaError_t result, const char* what) {
  if (result != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(result));
}

/// A device buffer holding `host`, reduced with `op` and copied back.
std::vector<float> reduce_on_device(dualrs::dist::NcclCommunicator& nccl, const std::vector<float>& host,
                                    dualrs::dist::ReduceOp op, cudaStream_t stream) {
  float* device = nullptr;
  cuda_check(cudaMalloc(&device, host.size() * sizeof(float)), "cudaMalloc");
  cuda_check(cudaMemcpy(device, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy");
  nccl.all_reduce(device, host.size(), op, stream);
  cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  std::vector<float> out(host.size());
  cuda_check(cudaMemcpy(out.data(), device, host.size() * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy");
  cuda_check(cudaFree(device), "cudaFree");
  return out;
}

int run(dualrs::dist::Communicator& comm, const dualrs::dist::World& world) {
  namespace dist = dualrs::dist;
  // Every rank decides whether it can run; the job skips when any rank cannot.
  int devices = 0;
  const cudaError_t found = cudaGetDeviceCount(&devices);
  std::string reason;
  if (!dist::nccl_built()) reason = "dualrs was built without NCCL (DUALRS_WITH_NCCL=OFF or NCCL not found)";
  else if (found != cudaSuccess) reason = std::string("no CUDA device: cudaGetDeviceCount failed: ") + cudaGetErrorString(found);
  else if (devices == 0) reason = "no CUDA device: cudaGetDeviceCount returned 0";
  else if (devices < world.local_size) {
    reason = std::to_string(world.local_size) + " ranks on " + world.host + " but only " + std::to_string(devices) +
             " CUDA device(s): NCCL needs one GPU per rank";
  }
  if (comm.any_of(!reason.empty())) {
    if (comm.is_root()) std::printf("SKIPPED: %s\n", reason.empty() ? "another rank cannot run (see its reason)" : reason.c_str());
    if (!reason.empty() && !comm.is_root()) std::printf("SKIPPED on rank %d: %s\n", comm.rank(), reason.c_str());
    return kSkip;
  }

  dist::NcclCommunicator nccl(comm, world.local_rank);
  if (comm.is_root()) std::printf("%s; %d rank(s)\n", nccl.versions().describe().c_str(), nccl.size());
  expect(nccl.rank() == comm.rank() && nccl.size() == comm.size(), "NCCL rank and size match MPI's");
  int current = -1;
  cuda_check(cudaGetDevice(&current), "cudaGetDevice");
  expect(current == world.local_rank, "the constructor selected device local_rank");
  cudaStream_t stream = nullptr;
  cuda_check(cudaStreamCreate(&stream), "cudaStreamCreate");

  const int r = comm.rank(), n = comm.size();
  // 1M + 3 elements: several NCCL chunks and a ragged end. Element i on rank q: (i % 5) + q.
  std::vector<float> host(1'000'003);
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i % 5) + r;
  const std::vector<float> sum = reduce_on_device(nccl, host, dist::ReduceOp::kSum, stream);
  const std::vector<float> mean = reduce_on_device(nccl, host, dist::ReduceOp::kMean, stream);
  const std::vector<float> max = reduce_on_device(nccl, host, dist::ReduceOp::kMax, stream);
  std::size_t wrong_sum = 0, wrong_mean = 0, wrong_max = 0;
  for (std::size_t i = 0; i < host.size(); ++i) {
    const double base = static_cast<double>(i % 5);
    wrong_sum += sum[i] != static_cast<float>(n * base + n * (n - 1) / 2.0);
    wrong_mean += std::fabs(mean[i] - (base + (n - 1) / 2.0)) > 1e-6 * (1.0 + base + n);
    wrong_max += max[i] != static_cast<float>(base + n - 1);
  }
  expect(wrong_sum == 0, "sum: " + std::to_string(wrong_sum) + " wrong elements");
  expect(wrong_mean == 0, "mean (ncclAvg): " + std::to_string(wrong_mean) + " wrong elements");
  expect(wrong_max == 0, "max: " + std::to_string(wrong_max) + " wrong elements");

  // Broadcast of bytes from the last rank.
  std::vector<unsigned char> bytes(4099);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(r == n - 1 ? (i * 31) % 251 : 0);
  void* device = nullptr;
  cuda_check(cudaMalloc(&device, bytes.size()), "cudaMalloc");
  cuda_check(cudaMemcpy(device, bytes.data(), bytes.size(), cudaMemcpyHostToDevice), "cudaMemcpy");
  nccl.broadcast(device, bytes.size(), n - 1, stream);
  cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  cuda_check(cudaMemcpy(bytes.data(), device, bytes.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
  cuda_check(cudaFree(device), "cudaFree");
  std::size_t wrong_bytes = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) wrong_bytes += bytes[i] != static_cast<unsigned char>((i * 31) % 251);
  expect(wrong_bytes == 0, "broadcast: " + std::to_string(wrong_bytes) + " wrong bytes");

  // The default stream works too (nullptr), as used where LibTorch has no CUDA.
  const std::vector<float> on_default = reduce_on_device(nccl, {1.0f * r}, dist::ReduceOp::kSum, nullptr);
  expect(on_default[0] == n * (n - 1) / 2.0f, "sum on the default stream");
  cuda_check(cudaStreamDestroy(stream), "cudaStreamDestroy");

  const bool ok = comm.all_agree(g_failures == 0);
  if (comm.is_root()) std::printf("%s\n", ok ? "PASSED" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  dualrs::dist::MpiEnvironment env(&argc, &argv);
  try {
    return run(env.communicator(), env.world());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: error: %s\n", env.world().rank, e.what());
    if (env.world().size > 1) env.communicator().abort(1, "nccl_communicator_test: ending the job");
    return 1;
  }
}
