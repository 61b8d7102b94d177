#pragma once
/// \file
/// Crash-safe publication of output files (docs/cluster.md §4): write `<final>.tmp`, close,
/// fsync, rename to `<final>`, fsync the folder. A published file exists only when complete;
/// an existing file at `<final>` is replaced only by a complete new one.

#include <cstddef>
#include <string>

namespace dualrs::io {

/// "<final>.tmp" — where writers put a file before publishing it.
std::string temporary_path(const std::string& final_path);

/// Creates `tmp_path` for writing and returns its descriptor (close-on-exec). The name is
/// taken exclusively: whatever is there (a leftover of an interrupted run, or a link planted
/// by someone else) is unlinked first, never written through, and the file is then opened
/// with O_CREAT | O_EXCL | O_NOFOLLOW, so no link is ever followed and no existing file is
/// overwritten. Mode 0666 & ~umask, like any tool's output (docs/cluster.md §4).
/// \throws IoError naming the path (e.g. a folder of that name, permission denied).
int create_temporary(const std::string& tmp_path);

/// Writes all `size` bytes of `data` to `fd`, fsyncs and closes it (also on failure).
/// \throws IoError naming `path` with the system's reason (e.g. "No space left on device").
void write_and_close(int fd, const char* data, std::size_t size, const std::string& path);

/// fsync(tmp), rename(tmp, final), fsync(folder). \throws IoError naming the paths.
void publish_file(const std::string& tmp_path, const std::string& final_path);

/// Writes `content` to `final_path` atomically (tmp + publish). \throws IoError.
void write_file_atomic(const std::string& final_path, const std::string& content);

/// Creates a folder and its parents. \throws IoError.
void ensure_directory(const std::string& path);

}  // namespace dualrs::io
