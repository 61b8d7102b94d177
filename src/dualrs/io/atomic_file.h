#pragma once
/// \file
/// Crash-safe publication of output files (docs/cluster.md §4): write `<final>.tmp`, close,
/// fsync, rename to `<final>`, fsync the folder. A published file exists only when complete;
/// an existing file at `<final>` is replaced only by a complete new one.

#include <string>

namespace dualrs::io {

/// "<final>.tmp" — where writers put a file before publishing it.
std::string temporary_path(const std::string& final_path);

/// fsync(tmp), rename(tmp, final), fsync(folder). \throws IoError naming the paths.
void publish_file(const std::string& tmp_path, const std::string& final_path);

/// Writes `content` to `final_path` atomically (tmp + publish). \throws IoError.
void write_file_atomic(const std::string& final_path, const std::string& content);

/// Creates a folder and its parents. \throws IoError.
void ensure_directory(const std::string& path);

}  // namespace dualrs::io
