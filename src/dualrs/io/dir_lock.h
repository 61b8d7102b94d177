#pragma once
/// \file
/// A lock file that stops two jobs from writing one output folder (docs/cluster.md §3).
///
/// A whole-selection run holds `<dir>/dualrs.lock`; a run of one shard subset
/// (`--shard-subset I/N`, Slurm array elements) holds `<dir>/dualrs.subset-I-of-N.lock`, so
/// disjoint subsets run side by side. The file is created with O_EXCL and holds JSON: host,
/// pid, Slurm job id and restart count, command, scope, time. A lock is stale — and is taken
/// over, saying so — when its process is gone from this host, or when it belongs to an
/// earlier incarnation of this same requeued Slurm job ($SLURM_RESTART_COUNT is higher now).

#include <string>

#include "dualrs/core/shards.h"

namespace dualrs::io {

/// Who holds a lock (as read from its file).
struct LockHolder {
  std::string host;
  long pid = 0;
  std::string slurm_job_id;
  long slurm_restart_count = 0;
  std::string command;
  std::string scope;       ///< "all" or "subset I/N"
  std::string since_utc;
  /// "host H, pid P, Slurm job J, running 'dualrs label' (all shards) since T"
  std::string describe() const;
};

class DirectoryLock {
 public:
  /// Takes the lock of `dir` for `subset` (creating `dir`). `*notice` (may be null) receives a
  /// line when a stale lock was taken over.
  /// \throws IoError naming the lock file and its holder when a live job holds a lock whose
  /// scope overlaps this one.
  static DirectoryLock acquire(const std::string& dir, const std::string& command, const ShardSubset& subset,
                               std::string* notice);
  /// Holds nothing.
  DirectoryLock() = default;
  /// Moves the ownership of the lock file; `other` holds nothing afterwards.
  DirectoryLock(DirectoryLock&& other) noexcept;
  DirectoryLock& operator=(DirectoryLock&& other) noexcept;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  /// Releases the lock (see release()).
  ~DirectoryLock();
  /// Removes the lock file if it still names this process (a job that took it over as stale
  /// keeps its own); afterwards this object holds nothing. Never throws.
  void release();
  /// The lock file, or "" when nothing is held.
  const std::string& path() const { return path_; }

 private:
  explicit DirectoryLock(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace dualrs::io
