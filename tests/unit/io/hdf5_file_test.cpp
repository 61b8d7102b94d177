#include "dualrs/io/hdf5_file.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "dualrs/core/error.h"
#include "io_test_util.h"

namespace dualrs::io {
namespace {

using testing::contains;
using testing::io_error_message;
using testing::TempDir;
using testing::write_bytes;

using Dims = std::vector<std::uint64_t>;

class Hdf5FileTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::string path_ = dir_.file("data.h5");
};

TEST_F(Hdf5FileTest, EveryDatasetTypeRoundTrips) {
  const std::vector<std::int64_t> i64{0, -1, std::numeric_limits<std::int64_t>::max(),
                                      std::numeric_limits<std::int64_t>::min(), 42};
  const std::vector<std::int32_t> i32{7, -7, std::numeric_limits<std::int32_t>::max()};
  const std::vector<std::int8_t> i8{0, 1, -128, 127};
  const std::vector<double> f64{0.0, -1.5, 1e-300, 3.141592653589793};
  const std::vector<float> f32{0.25f, -2.0f, 1e30f};
  const std::vector<std::int64_t> matrix{1, 2, 3, 4, 5, 6};  // [3, 2]
  const std::vector<double> fmatrix{0.5, 1.5, 2.5, 3.5, 4.5, 5.5};  // [2, 3]
  {
    Hdf5File f(path_, FileMode::kCreateTruncate);
    f.write_int64("i64", i64, {i64.size()});
    f.write_int32("i32", i32, {i32.size()});
    f.write_int8("i8", i8, {i8.size()});
    f.write_float64("f64", f64, {f64.size()});
    f.write_float32("f32", f32, {f32.size()});
    f.write_int64("matrix", matrix, {3, 2});
    f.write_float64("fmatrix", fmatrix, {2, 3});
    f.close();
  }
  Hdf5File f(path_, FileMode::kReadOnly);
  EXPECT_EQ(f.read_int64("i64"), i64);
  EXPECT_EQ(f.read_int64("i32"), std::vector<std::int64_t>(i32.begin(), i32.end()));
  EXPECT_EQ(f.read_int64("i8"), std::vector<std::int64_t>(i8.begin(), i8.end()));
  EXPECT_EQ(f.read_float64("f64"), f64);
  EXPECT_EQ(f.read_float64("f32"), std::vector<double>(f32.begin(), f32.end()));
  EXPECT_EQ(f.read_int64("matrix"), matrix);
  EXPECT_EQ(f.read_float64("fmatrix"), fmatrix);

  EXPECT_EQ(f.dims("i64"), Dims{5});
  EXPECT_EQ(f.dims("matrix"), (Dims{3, 2}));
  EXPECT_EQ(f.dims("fmatrix"), (Dims{2, 3}));
  EXPECT_EQ(f.dtype("i64"), "int64");
  EXPECT_EQ(f.dtype("i32"), "int32");
  EXPECT_EQ(f.dtype("i8"), "int8");
  EXPECT_EQ(f.dtype("f64"), "float64");
  EXPECT_EQ(f.dtype("f32"), "float32");
  EXPECT_EQ(f.list("/"), (std::vector<std::string>{"f32", "f64", "fmatrix", "i32", "i64", "i8", "matrix"}));
}

TEST_F(Hdf5FileTest, ZeroRowDatasetsReadBackEmpty) {
  {
    Hdf5File f(path_, FileMode::kCreateTruncate);
    f.write_int64("i64", {}, {0});
    f.write_int8("i8", {}, {0});
    f.write_float64("f64", {}, {0});
    f.write_float32("f32", {}, {0});
    f.write_int64("counts", {}, {0, 10});
    f.write_int64("no_columns", {}, {4, 0});
  }
  Hdf5File f(path_, FileMode::kReadOnly);
  EXPECT_TRUE(f.read_int64("i64").empty());
  EXPECT_TRUE(f.read_int64("i8").empty());
  EXPECT_TRUE(f.read_float64("f64").empty());
  EXPECT_TRUE(f.read_float64("f32").empty());
  EXPECT_TRUE(f.read_int64("counts").empty());
  EXPECT_TRUE(f.read_int64("no_columns").empty());
  EXPECT_EQ(f.dims("i64"), Dims{0});
  EXPECT_EQ(f.dims("counts"), (Dims{0, 10}));
  EXPECT_EQ(f.dims("no_columns"), (Dims{4, 0}));
}

TEST_F(Hdf5FileTest, LargeDatasetSpanningManyChunksRoundTrips) {
  std::vector<std::int64_t> values(400000);  // 3.2 MB of int64 -> several ~1 MB chunks
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<std::int64_t>(i * i % 1000003);
  std::vector<double> wide(3 * 100000);  // [3, 100000] float64: one 800 kB row per chunk
  for (std::size_t i = 0; i < wide.size(); ++i) wide[i] = 0.5 * static_cast<double>(i);
  {
    Hdf5File f(path_, FileMode::kCreateTruncate);
    f.write_int64("values", values, {values.size()});
    f.write_float64("wide", wide, {3, 100000});
  }
  Hdf5File f(path_, FileMode::kReadOnly);
  EXPECT_EQ(f.read_int64("values"), values);
  EXPECT_EQ(f.read_float64("wide"), wide);
}

TEST_F(Hdf5FileTest, NamesWithSlashesCreateGroups) {
  {
    Hdf5File f(path_, FileMode::kCreateTruncate);
    f.write_int64("shards/00001/idx", {3, 4}, {2});
    f.set_attr("shards/00001", "begin", std::int64_t{3});
  }
  Hdf5File f(path_, FileMode::kReadOnly);
  EXPECT_TRUE(f.exists("shards"));
  EXPECT_TRUE(f.exists("shards/00001/idx"));
  EXPECT_TRUE(f.exists("/shards/00001/idx"));
  EXPECT_FALSE(f.exists("shards/00002/idx"));
  EXPECT_FALSE(f.exists("missing"));
  EXPECT_EQ(f.read_int64("shards/00001/idx"), (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(f.attr_int64("shards/00001", "begin"), 3);
  EXPECT_EQ(f.list("shards"), std::vector<std::string>{"00001"});
}

TEST_F(Hdf5FileTest, AttributesRoundTrip) {
  const std::string utf8 = "\xcf\x83 = 0.25, \xce\xa3 = {0.12, 0.25}";  // "σ = 0.25, Σ = {...}"
  const std::uint64_t big_seed = std::numeric_limits<std::uint64_t>::max();
  {
    Hdf5File f(path_, FileMode::kCreateTruncate);
    f.write_float64("radius", {1.0, 2.0}, {2});
    f.set_attr("/", "text", utf8);
    f.set_attr("/", "empty", std::string());
    f.set_attr("/", "pi", 3.141592653589793);
    f.set_attr("/", "negative", std::int64_t{-12345678901234});
    f.set_attr("/", "seed", big_seed);
    f.set_attr("/", "small_seed", std::uint64_t{7});
    f.set_attr("/", "sigmas", std::vector<double>{0.12, 0.25, 0.5});
    f.set_attr("/", "no_sigmas", std::vector<double>{});
    f.set_attr("radius", "units", std::string("l2, [0,1] pixels"));
    f.set_attr("/", "replaced", std::string("first"));
    f.set_attr("/", "replaced", std::int64_t{2});  // an attribute can be rewritten with another type
  }
  Hdf5File f(path_, FileMode::kReadOnly);
  EXPECT_EQ(f.attr_string("/", "text"), utf8);
  EXPECT_EQ(f.attr_string("/", "empty"), "");
  EXPECT_EQ(f.attr_double("/", "pi"), 3.141592653589793);
  EXPECT_EQ(f.attr_int64("/", "negative"), -12345678901234);
  EXPECT_EQ(f.attr_double("/", "negative"), -12345678901234.0);  // integers convert to double
  EXPECT_EQ(f.attr_uint64("/", "seed"), big_seed);
  EXPECT_EQ(f.attr_uint64("/", "small_seed"), 7u);
  EXPECT_EQ(f.attr_int64("/", "small_seed"), 7);
  EXPECT_EQ(f.attr_doubles("/", "sigmas"), (std::vector<double>{0.12, 0.25, 0.5}));
  EXPECT_TRUE(f.attr_doubles("/", "no_sigmas").empty());
  EXPECT_EQ(f.attr_doubles("/", "pi"), std::vector<double>{3.141592653589793});
  EXPECT_EQ(f.attr_string("radius", "units"), "l2, [0,1] pixels");
  EXPECT_EQ(f.attr_int64("/", "replaced"), 2);
  EXPECT_TRUE(f.has_attr("/", "pi"));
  EXPECT_FALSE(f.has_attr("/", "missing"));
  EXPECT_EQ(f.attr_names("/"), (std::vector<std::string>{"empty", "negative", "no_sigmas", "pi", "replaced", "seed",
                                                         "sigmas", "small_seed", "text"}));
  EXPECT_EQ(f.attr_dtype("/", "text"), "string");
  EXPECT_EQ(f.attr_dtype("/", "pi"), "float64");
  EXPECT_EQ(f.attr_dtype("/", "negative"), "int64");
  EXPECT_EQ(f.attr_dtype("/", "seed"), "uint64");

  // Out-of-range and wrong-type reads are errors that name the attribute, never silent clips.
  const std::string too_big = io_error_message([&] { f.attr_int64("/", "seed"); });
  EXPECT_PRED2(contains, too_big, "'seed'");
  EXPECT_PRED2(contains, too_big, path_);
  EXPECT_PRED2(contains, io_error_message([&] { f.attr_uint64("/", "negative"); }), "'negative'");
  const std::string wrong_type = io_error_message([&] { f.attr_int64("/", "text"); });
  EXPECT_PRED2(contains, wrong_type, "'text'");
  EXPECT_PRED2(contains, wrong_type, "string");
  EXPECT_PRED2(contains, io_error_message([&] { f.attr_string("/", "pi"); }), "'pi'");
  EXPECT_PRED2(contains, io_error_message([&] { f.attr_double("/", "sigmas"); }), "'sigmas'");
}

TEST_F(Hdf5FileTest, MissingFileIsAnIoErrorNamingThePath) {
  const std::string missing = dir_.file("does_not_exist.h5");
  const std::string msg = io_error_message([&] { Hdf5File f(missing, FileMode::kReadOnly); });
  EXPECT_PRED2(contains, msg, missing);
  EXPECT_PRED2(contains, msg, "No such file");
}

TEST_F(Hdf5FileTest, NonHdf5FileIsAnIoErrorNamingThePath) {
  const std::string garbage = dir_.file("garbage.h5");
  write_bytes(garbage, std::string("this is not HDF5 \x01\x02\x03\xff", 21) + std::string(4096, 'x'));
  const std::string msg = io_error_message([&] { Hdf5File f(garbage, FileMode::kReadOnly); });
  EXPECT_PRED2(contains, msg, garbage);
  EXPECT_PRED2(contains, msg, "not an HDF5 file");
}

TEST_F(Hdf5FileTest, CreateInMissingFolderIsAnIoErrorNamingThePath) {
  const std::string bad = dir_.file("no/such/folder/out.h5");
  EXPECT_PRED2(contains, io_error_message([&] { Hdf5File f(bad, FileMode::kCreateTruncate); }), bad);
}

TEST_F(Hdf5FileTest, MissingObjectsAreIoErrorsNamingPathAndObject) {
  {
    Hdf5File f(path_, FileMode::kCreateTruncate);
    f.write_float64("radius", {1.0}, {1});
    f.write_int64("idx", {1}, {1});
  }
  Hdf5File f(path_, FileMode::kReadOnly);
  for (const std::string& msg : {io_error_message([&] { f.read_int64("p_a_lower"); }),
                                 io_error_message([&] { f.read_float64("p_a_lower"); }),
                                 io_error_message([&] { f.dims("p_a_lower"); })}) {
    EXPECT_PRED2(contains, msg, path_);
    EXPECT_PRED2(contains, msg, "'p_a_lower'");
  }
  const std::string no_attr = io_error_message([&] { f.attr_string("/", "git_revision"); });
  EXPECT_PRED2(contains, no_attr, path_);
  EXPECT_PRED2(contains, no_attr, "'git_revision'");
  const std::string no_object = io_error_message([&] { f.has_attr("group_x", "a"); });
  EXPECT_PRED2(contains, no_object, path_);
  EXPECT_PRED2(contains, no_object, "'group_x'");
  // A dataset of the other type class is refused, not reinterpreted.
  const std::string wrong_class = io_error_message([&] { f.read_int64("radius"); });
  EXPECT_PRED2(contains, wrong_class, "'radius'");
  EXPECT_PRED2(contains, wrong_class, "float64");
  EXPECT_PRED2(contains, io_error_message([&] { f.read_float64("idx"); }), "'idx'");
}

TEST_F(Hdf5FileTest, WritesAreCheckedAgainstDimsAndMode) {
  {
    Hdf5File f(path_, FileMode::kCreateTruncate);
    EXPECT_PRED2(contains, io_error_message([&] { f.write_int64("x", {1, 2, 3}, {2, 2}); }), "'x'");
    EXPECT_PRED2(contains, io_error_message([&] { f.write_int64("y", {1}, {1, 1, 1}); }), "'y'");
    f.write_int64("z", {1}, {1});
    EXPECT_PRED2(contains, io_error_message([&] { f.write_int64("z", {2}, {1}); }), "'z'");  // exists already
  }
  Hdf5File f(path_, FileMode::kReadOnly);
  const std::string msg = io_error_message([&] { f.write_int64("w", {1}, {1}); });
  EXPECT_PRED2(contains, msg, "'w'");
  EXPECT_PRED2(contains, msg, path_);
}

TEST_F(Hdf5FileTest, HdfFailuresPrintNothingToStderr) {
  {
    Hdf5File f(path_, FileMode::kCreateTruncate);
    f.write_int64("idx", {1}, {1});
  }
  ::testing::internal::CaptureStderr();
  {
    Hdf5File f(path_, FileMode::kReadOnly);
    io_error_message([&] { f.read_int64("missing"); });
    io_error_message([&] { f.attr_string("/", "missing"); });
    EXPECT_FALSE(f.exists("missing/deeper"));
  }
  io_error_message([&] { Hdf5File f(dir_.file("no/such/dir.h5"), FileMode::kCreateTruncate); });
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST_F(Hdf5FileTest, HandlesMoveAndCloseOnce) {
  Hdf5File f(path_, FileMode::kCreateTruncate);
  f.close();
  f.close();  // a second close is a no-op
  Hdf5File g(path_, FileMode::kReadOnly);
  EXPECT_TRUE(g.list("/").empty());

  int closed = 0;
  static int* counter = nullptr;
  counter = &closed;
  auto closer = [](std::int64_t) -> int {
    ++*counter;
    return 0;
  };
  {
    Hdf5Handle a(5, closer);
    Hdf5Handle b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.id(), 5);
    Hdf5Handle c;
    c = std::move(b);
    EXPECT_EQ(c.id(), 5);
    Hdf5Handle d(6, closer);
    EXPECT_EQ(d.release(), 6);
    EXPECT_FALSE(d.valid());
  }
  EXPECT_EQ(closed, 1);
}

TEST_F(Hdf5FileTest, AFailedWriteAtCloseIsAnIoErrorAndLeavesHdf5Usable) {
  // A file-size limit makes write(2) fail as a full disk does (EFBIG instead of ENOSPC). HDF5
  // must not be left holding a half-closed file: that crashed the process at exit.
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string msg;
  {
    Hdf5File f(path_, FileMode::kCreateTruncate);
    f.set_attr("/", "schema", std::string("test"));
    f.write_float64("x", std::vector<double>(100000, 0.5), {100000});
    msg = io_error_message([&] { f.close(); });
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_PRED2(contains, msg, path_);
  EXPECT_PRED2(contains, msg, "File too large");

  const std::string other = dir_.file("after.h5");
  {
    Hdf5File f(other, FileMode::kCreateTruncate);
    f.write_int64("idx", {1, 2, 3}, {3});
    f.close();
  }
  EXPECT_EQ(Hdf5File(other, FileMode::kReadOnly).read_int64("idx"), (std::vector<std::int64_t>{1, 2, 3}));
}

TEST_F(Hdf5FileTest, CreatingReplacesALinkInsteadOfWritingThroughIt) {
  const std::string target = dir_.file("victim");
  write_bytes(target, "precious");
  std::filesystem::create_symlink(target, path_);
  {
    Hdf5File f(path_, FileMode::kCreateTruncate);
    f.write_int64("idx", {7}, {1});
    f.close();
  }
  EXPECT_EQ(testing::read_bytes(target), "precious");
  EXPECT_FALSE(std::filesystem::is_symlink(path_));
  EXPECT_EQ(Hdf5File(path_, FileMode::kReadOnly).read_int64("idx"), (std::vector<std::int64_t>{7}));
}

TEST_F(Hdf5FileTest, CreatedFilesGet0666MaskedByTheUmask) {
  const mode_t old = ::umask(027);
  {
    Hdf5File f(path_, FileMode::kCreateTruncate);
    f.close();
  }
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(Hdf5VersionTest, ReportsTheRuntimeLibrary) {
  const std::string v = hdf5_version();
  EXPECT_EQ(v.rfind("1.", 0), 0u) << v;
}

}  // namespace
}  // namespace dualrs::io
