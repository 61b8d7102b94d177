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

int create_temporary(const std::string& tmp_path) {
  // A leftover or planted entry goes first (unlink removes a link, not its target); should a
  // new one appear in between, O_EXCL refuses it instead of following it.
  if (::unlink(tmp_path.c_str()) != 0 && errno != ENOENT && errno != EISDIR) {
    DUALRS_THROW(IoError, "cannot remove the old temporary file '", tmp_path, "': ", std::strerror(errno));
  }
  const int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (fd < 0) DUALRS_THROW(IoError, "cannot create '", tmp_path, "': ", std::strerror(errno));
  return fd;
}

void write_and_close(int fd_number, const char* data, std::size_t size, const std::string& path) {
  Fd fd(fd_number);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd.get(), data + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      DUALRS_THROW(IoError, "cannot write '", path, "': ", std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) DUALRS_THROW(IoError, "fsync of '", path, "' failed: ", std::strerror(errno));
  if (fd.close_now() != 0) DUALRS_THROW(IoError, "close of '", path, "' failed: ", std::strerror(errno));
}

void publish_file(const std::string& tmp_path, const std::string& final_path) {
  fsync_path(tmp_path, O_RDONLY | O_NOFOLLOW, "file");
  if (std::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    DUALRS_THROW(IoError, "cannot rename '", tmp_path, "' to '", final_path, "': ", std::strerror(errno));
  }
  // The rename is durable only once the folder's entry is on disk.
  fsync_path(parent_folder(final_path), O_RDONLY | O_DIRECTORY, "folder");
}

void write_file_atomic(const std::string& final_path, const std::string& content) {
  const std::string tmp = temporary_path(final_path);
  try {
    write_and_close(create_temporary(tmp), content.data(), content.size(), tmp);
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
