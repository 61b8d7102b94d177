#include "dualrs/io/dir_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <optional>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/provenance.h"

namespace dualrs::io {
namespace fs = std::filesystem;

namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

std::string lock_name(const ShardSubset& subset) {
  if (subset.all()) return "dualrs.lock";
  return "dualrs.subset-" + std::to_string(subset.index) + "-of-" + std::to_string(subset.count) + ".lock";
}

std::string scope_text(const ShardSubset& subset) { return subset.all() ? "all" : "subset " + subset.text(); }

/// The subset a lock file's name stands for, or nullopt when it is not a dualrs lock.
std::optional<ShardSubset> subset_of(const std::string& file) {
  static const std::regex subset(R"(dualrs\.subset-([0-9]+)-of-([0-9]+)\.lock)");
  if (file == "dualrs.lock") return ShardSubset{};
  std::smatch m;
  if (!std::regex_match(file, m, subset)) return std::nullopt;
  return ShardSubset{std::stoll(m[1].str()), std::stoll(m[2].str())};
}

/// Whether two subsets share a shard: I ≡ J (mod gcd(N, M)).
bool overlaps(const ShardSubset& a, const ShardSubset& b) {
  const std::int64_t g = std::gcd(a.count, b.count);
  return a.index % g == b.index % g;
}

LockHolder read_holder(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  LockHolder h;
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (!j.is_object()) {
    h.host = "?";
    h.command = "(unreadable lock file)";
    return h;
  }
  h.host = j.value("host", "?");
  h.pid = j.value("pid", 0L);
  h.slurm_job_id = j.value("slurm_job_id", "");
  h.slurm_restart_count = j.value("slurm_restart_count", 0L);
  h.command = j.value("command", "");
  h.scope = j.value("scope", "");
  h.since_utc = j.value("since_utc", "");
  return h;
}

/// True when `pid` has exited: no such process, or a zombie nobody has reaped yet (a rank
/// whose mpirun died is re-parented, and in containers its new parent may never reap it).
bool process_gone(long pid) {
  if (::kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');  // "pid (comm) state ..."; comm may hold spaces or ')'
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z';
}

/// Why `h` no longer holds its lock, or "" when it may still be alive.
std::string stale_reason(const LockHolder& h) {
  const std::string job = env_or_empty("SLURM_JOB_ID");
  const long restarts = std::atol(env_or_empty("SLURM_RESTART_COUNT").c_str());
  if (!job.empty() && h.slurm_job_id == job && h.slurm_restart_count < restarts) {
    return "it belongs to an earlier run of this requeued Slurm job " + job;
  }
  if (h.host == host_name() && h.pid > 0 && process_gone(h.pid)) {
    return "its process " + std::to_string(h.pid) + " on " + h.host + " is gone";
  }
  return {};
}

/// Creates `path` exclusively with this process as holder; false when it exists.
bool create_exclusive(const std::string& path, const std::string& command, const ShardSubset& subset) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) {
    if (errno == EEXIST) return false;
    DUALRS_THROW(IoError, "cannot create lock file '", path, "': ", std::strerror(errno));
  }
  const std::string text = nlohmann::json({{"host", host_name()},
                                           {"pid", static_cast<long>(::getpid())},
                                           {"slurm_job_id", env_or_empty("SLURM_JOB_ID")},
                                           {"slurm_restart_count", std::atol(env_or_empty("SLURM_RESTART_COUNT").c_str())},
                                           {"command", command},
                                           {"scope", scope_text(subset)},
                                           {"since_utc", utc_now()}})
                               .dump() + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    DUALRS_THROW(IoError, "cannot write lock file '", path, "': ", std::strerror(errno));
  }
  return true;
}

}  // namespace

std::string LockHolder::describe() const {
  std::string out = "host " + host + ", pid " + std::to_string(pid);
  out += slurm_job_id.empty() ? ", no Slurm job" : ", Slurm job " + slurm_job_id;
  if (!command.empty()) out += ", running '" + command + "'";
  if (!scope.empty()) out += " (" + (scope == "all" ? std::string("all shards") : scope) + ")";
  if (!since_utc.empty()) out += " since " + since_utc;
  return out;
}

DirectoryLock DirectoryLock::acquire(const std::string& dir, const std::string& command, const ShardSubset& subset,
                                     std::string* notice) {
  ensure_directory(dir);
  const std::string own = (fs::path(dir) / lock_name(subset)).string();
  if (!create_exclusive(own, command, subset)) {
    const LockHolder holder = read_holder(own);
    const std::string why = stale_reason(holder);
    if (why.empty()) {
      DUALRS_THROW(IoError, "output folder '", dir, "' is locked by another job (", holder.describe(), "; lock file ",
                   own, "). Wait for it, or delete the lock file if that job is dead");
    }
    ::unlink(own.c_str());
    if (!create_exclusive(own, command, subset)) {
      DUALRS_THROW(IoError, "output folder '", dir, "' is locked by another job (", read_holder(own).describe(),
                   "; lock file ", own, ")");
    }
    if (notice != nullptr) *notice = "took over the stale lock " + own + " of " + holder.describe() + ": " + why;
  }
  DirectoryLock lock(own);
  // Other scopes: a whole run excludes every subset run and the reverse; subsets exclude
  // the subsets they share shards with.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    const std::optional<ShardSubset> other = subset_of(file);
    if (!other || entry.path().string() == own || !overlaps(*other, subset)) continue;
    const LockHolder holder = read_holder(entry.path().string());
    if (!stale_reason(holder).empty()) continue;
    lock.release();
    DUALRS_THROW(IoError, "output folder '", dir, "' is being written by another job (", holder.describe(),
                 "; lock file ", entry.path().string(), ") whose shards overlap this run's (", scope_text(subset), ")");
  }
  return lock;
}

DirectoryLock::DirectoryLock(DirectoryLock&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }

DirectoryLock& DirectoryLock::operator=(DirectoryLock&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

DirectoryLock::~DirectoryLock() { release(); }

void DirectoryLock::release() {
  if (path_.empty()) return;
  // Only our own file: a later job may have taken over a lock it found stale.
  const LockHolder holder = read_holder(path_);
  if (holder.pid == static_cast<long>(::getpid()) && holder.host == host_name()) ::unlink(path_.c_str());
  path_.clear();
}

}  // namespace dualrs::io
