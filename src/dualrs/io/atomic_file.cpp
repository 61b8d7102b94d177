#include "dualrs/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "dualrs/core/error.h"

namespace dualrs::io {
namespace {

std::string parent_folder(const std::string& path) {
  const std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? std::string(".") : parent;
}

/// Closes a descriptor on scope exit unless released (error paths).
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  /// Closes now and reports the result (close can report deferred write errors).
  int close_now() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

void fsync_path(const std::string& path, int flags, const char* what) {
  Fd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (fd.get() < 0) DUALRS_THROW(IoError, "cannot open ", what, " '", path, "' to fsync it: ", std::strerror(errno));
  if (::fsync(fd.get()) != 0) DUALRS_THROW(IoError, "fsync of ", what, " '", path, "' failed: ", std::strerror(errno));
  if (fd.close_now() != 0) DUALRS_THROW(IoError, "close of ", what, " '", path, "' failed: ", std::strerror(errno));
}

}  // namespace

std::string temporary_path(const std::string& final_path) { return final_path + ".tmp"; }

void publish_file(const std::string& tmp_path, const std::string& final_path) {
  fsync_path(tmp_path, O_RDONLY, "file");
  if (std::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    DUALRS_THROW(IoError, "cannot rename '", tmp_path, "' to '", final_path, "': ", std::strerror(errno));
  }
  // The rename is durable only once the folder's entry is on disk.
  fsync_path(parent_folder(final_path), O_RDONLY | O_DIRECTORY, "folder");
}

void write_file_atomic(const std::string& final_path, const std::string& content) {
  const std::string tmp = temporary_path(final_path);
  try {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) DUALRS_THROW(IoError, "cannot create '", tmp, "': ", std::strerror(errno));
    std::size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        DUALRS_THROW(IoError, "cannot write '", tmp, "': ", std::strerror(errno));
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) DUALRS_THROW(IoError, "fsync of '", tmp, "' failed: ", std::strerror(errno));
    if (fd.close_now() != 0) DUALRS_THROW(IoError, "close of '", tmp, "' failed: ", std::strerror(errno));
    publish_file(tmp, final_path);
  } catch (...) {
    std::remove(tmp.c_str());  // never leave a partial file behind; `final_path` is untouched
    throw;
  }
}

void ensure_directory(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) DUALRS_THROW(IoError, "cannot create folder '", path, "': ", ec.message());
  if (!std::filesystem::is_directory(path, ec)) {
    DUALRS_THROW(IoError, "cannot create folder '", path, "': a file of that name exists");
  }
}

}  // namespace dualrs::io
