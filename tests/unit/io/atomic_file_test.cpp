#include "dualrs/io/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "dualrs/core/error.h"
#include "io_test_util.h"

namespace dualrs::io {
namespace {

namespace fs = std::filesystem;
using testing::contains;
using testing::io_error_message;
using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

TEST(AtomicFileTest, TemporaryPathAppendsTmp) { EXPECT_EQ(temporary_path("out/shard-00001.h5"), "out/shard-00001.h5.tmp"); }

TEST(AtomicFileTest, WriteFileAtomicCreatesAndReplaces) {
  TempDir dir;
  const std::string path = dir.file("results.tsv");
  write_file_atomic(path, "first\n");
  EXPECT_EQ(read_bytes(path), "first\n");
  write_file_atomic(path, std::string("second\0with nul\n", 16));
  EXPECT_EQ(read_bytes(path), std::string("second\0with nul\n", 16));
  EXPECT_FALSE(fs::exists(temporary_path(path)));
  write_file_atomic(path, "");
  EXPECT_EQ(read_bytes(path), "");
}

TEST(AtomicFileTest, PublishMovesTheTemporaryFile) {
  TempDir dir;
  const std::string path = dir.file("a.h5");
  write_bytes(path, "old");
  write_bytes(temporary_path(path), "new");
  publish_file(temporary_path(path), path);
  EXPECT_EQ(read_bytes(path), "new");
  EXPECT_FALSE(fs::exists(temporary_path(path)));
}

TEST(AtomicFileTest, FailuresNameThePathsAndLeaveTheOldFile) {
  TempDir dir;
  const std::string missing_tmp = dir.file("never_written.tmp");
  const std::string target = dir.file("target");
  write_bytes(target, "keep me");
  const std::string msg = io_error_message([&] { publish_file(missing_tmp, target); });
  EXPECT_PRED2(contains, msg, missing_tmp);
  EXPECT_EQ(read_bytes(target), "keep me");

  const std::string in_missing_dir = dir.file("no/such/dir/file.txt");
  const std::string msg2 = io_error_message([&] { write_file_atomic(in_missing_dir, "x"); });
  EXPECT_PRED2(contains, msg2, "no/such/dir/file.txt");
}

TEST(AtomicFileTest, EnsureDirectoryCreatesParentsAndRejectsFiles) {
  TempDir dir;
  const std::string nested = dir.file("a/b/c");
  ensure_directory(nested);
  EXPECT_TRUE(fs::is_directory(nested));
  ensure_directory(nested);  // existing folder is fine
  const std::string file = dir.file("plain");
  write_bytes(file, "x");
  EXPECT_PRED2(contains, io_error_message([&] { ensure_directory(file); }), file);
}

}  // namespace
}  // namespace dualrs::io
