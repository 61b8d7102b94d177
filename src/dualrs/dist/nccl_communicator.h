#pragma once
/// \file
/// Collectives over CUDA device buffers with NCCL, for data-parallel training on GPUs
/// (docs/cluster.md §6). LibTorch's C++ c10d API is unstable and prebuilt LibTorch has no
/// ProcessGroupMPI, so dualrs talks to NCCL itself: the communicator is bootstrapped over an
/// existing Communicator (MPI in a job): rank 0 calls ncclGetUniqueId, the id is broadcast,
/// every rank selects its device (cudaSetDevice) and calls ncclCommInitRank.
///
/// This layer has no Torch and no CUDA types in its headers: device buffers are raw pointers
/// and streams are `void*` (a cudaStream_t; the train layer passes
/// at::cuda::getCurrentCUDAStream() when LibTorch has CUDA; nullptr is the default stream).
/// <nccl.h> stays in nccl_communicator.cpp. Built against NCCL when CMake finds it
/// (DUALRS_WITH_NCCL=AUTO|ON); with DUALRS_WITH_NCCL=OFF (or no NCCL) nccl_communicator_stub.cpp
/// provides the same interface and its constructor throws "built without NCCL".

#include <cstddef>
#include <memory>
#include <string>

#include "dualrs/dist/communicator.h"

namespace dualrs::dist {

/// The NCCL version the build was compiled against and the one loaded at run time
/// (ncclGetVersion), as NCCL_VERSION_CODE integers (e.g. 22809 for 2.28.9).
struct NcclVersions {
  int header = 0;
  int runtime = 0;
  /// True when they differ: LibTorch and dualrs may then be talking to different NCCLs.
  bool mismatch() const { return header != runtime; }
  /// One line for the start-up log, e.g. "NCCL 2.28.9 (built against 2.28.9)", with
  /// "; warning: the runtime and header versions differ" appended on a mismatch.
  std::string describe() const {
    std::string text = "NCCL " + dotted(runtime) + " (built against " + dotted(header) + ")";
    if (mismatch()) text += "; warning: the runtime and header versions differ";
    return text;
  }
  /// "2.28.9" from 22809 (NCCL >= 2.9 codes major*10000 + minor*100 + patch; older ones
  /// major*1000 + minor*100 + patch).
  static std::string dotted(int code) {
    const int major = code >= 10000 ? code / 10000 : code / 1000;
    const int rest = code >= 10000 ? code % 10000 : code % 1000;
    return std::to_string(major) + "." + std::to_string(rest / 100) + "." + std::to_string(rest % 100);
  }
};

/// Whether this build has NCCL (false: the stub is linked and NcclCommunicator throws).
bool nccl_built();

/// The header version this build was compiled against and the runtime version of the loaded
/// libnccl (ncclGetVersion; needs no GPU). Both 0 in a build without NCCL.
/// \throws CommError when ncclGetVersion fails.
NcclVersions nccl_versions();

/// A communicator over CUDA device buffers: one rank per GPU. Collectives are enqueued on
/// the stream passed in and return before they complete (order later work on that stream,
/// or synchronise it, before reading the result on the host). Every rank must call the
/// collectives in the same order with the same sizes.
class NcclCommunicator {
 public:
  /// Collective over `bootstrap` (every rank of it calls this): rank 0 makes the NCCL unique
  /// id, `bootstrap` broadcasts it, each rank calls cudaSetDevice(`device`) and
  /// ncclCommInitRank with bootstrap's rank and size. `device` is this rank's CUDA device
  /// ordinal, normally its local rank (dist::World::local_rank). Agrees on the outcome over
  /// `bootstrap`, so a failure on one rank fails every rank instead of leaving them waiting.
  /// \throws CommError ("built without NCCL" in a build without NCCL; a CUDA or NCCL error
  /// text with ncclGetErrorString otherwise; "failed on another rank" where another rank failed).
  NcclCommunicator(Communicator& bootstrap, int device);
  ~NcclCommunicator();
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const;
  int size() const;
  /// The CUDA device ordinal this rank uses.
  int device() const;
  /// The versions found when this communicator was created (see NcclVersions::describe).
  NcclVersions versions() const;

  /// Element-wise reduction over ranks of `count` floats at the device pointer `data`, in
  /// place; kMean is ncclAvg (NCCL >= 2.10.3). `stream` is a cudaStream_t (nullptr: the
  /// default stream). \throws CommError with NCCL's error text.
  void all_reduce(float* data, std::size_t count, ReduceOp op, void* stream);

  /// Copies `bytes` bytes at the device pointer `data` from `root` to every rank.
  /// \throws CommError.
  void broadcast(void* data, std::size_t bytes, int root, void* stream);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dualrs::dist
