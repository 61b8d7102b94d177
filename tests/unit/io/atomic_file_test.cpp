#include "dualrs/io/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

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

TEST(AtomicFileTest, APlantedLinkAtTheTemporaryNameIsNeverFollowed) {
  TempDir dir;
  const std::string path = dir.file("certify.tsv");
  const std::string target = dir.file("victim");
  write_bytes(target, "precious");
  fs::create_symlink(target, temporary_path(path));
  write_file_atomic(path, "results\n");
  EXPECT_EQ(read_bytes(target), "precious");
  EXPECT_FALSE(fs::is_symlink(path));
  EXPECT_EQ(read_bytes(path), "results\n");
  EXPECT_FALSE(fs::exists(fs::symlink_status(temporary_path(path))));
}

TEST(AtomicFileTest, FilesGet0666MaskedByTheUmask) {
  TempDir dir;
  const std::string path = dir.file("table.csv");
  for (const auto& [mask, mode] : {std::pair<mode_t, unsigned>{0, 0666u}, {027, 0640u}}) {
    const mode_t old = ::umask(mask);
    write_file_atomic(path, "x\n");
    ::umask(old);
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, mode) << "umask " << mask;
  }
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
