// IDX reader and split handling, on generated files and on the embedded MNIST digits.

#include "dualrs/data/dataset.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "dualrs/core/error.h"
#include "dualrs/data/idx.h"

namespace dualrs::data {
namespace {
namespace fs = std::filesystem;

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dualrs_data_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::string mnist(const std::string& name) { return std::string(DUALRS_SOURCE_DIR) + "/data/mnist/" + name; }

TEST_F(DatasetTest, IdxRoundTripGzipAndRaw) {
  IdxArray images{{3, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255}};
  IdxArray labels{{3}, {1, 0, 9}};
  for (const char* ext : {".gz", ""}) {
    write_idx(path(std::string("img") + ext), images);
    write_idx(path(std::string("lab") + ext), labels);
    const auto ds = load_mnist_idx(path(std::string("img") + ext), path(std::string("lab") + ext));
    ASSERT_EQ(ds.size(), 3);
    EXPECT_EQ(ds.image_shape(), (std::vector<std::int64_t>{1, 2, 2}));
    EXPECT_EQ(ds.label(2), 9);
    EXPECT_FLOAT_EQ(ds.image(2)[0][1][1].item<float>(), 1.0f);
    EXPECT_FLOAT_EQ(ds.image(0)[0][0][1].item<float>(), 1.0f / 255.0f);
  }
}

TEST_F(DatasetTest, WrongMagicNamesTheFile) {
  write_idx(path("lab.gz"), IdxArray{{3}, {1, 0, 9}});
  try {
    read_idx(path("lab.gz"), 3);  // a label file where images are expected
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("lab.gz"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("magic"), std::string::npos);
  }
}

TEST_F(DatasetTest, TruncatedAndCorruptAndMissingFiles) {
  write_idx(path("img"), IdxArray{{2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}});
  fs::resize_file(path("img"), fs::file_size(path("img")) - 3);
  EXPECT_THROW(read_idx(path("img"), 3), DataError);
  write_idx(path("img.gz"), IdxArray{{2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}});
  {
    // Damage the gzip payload (keep the header so zlib treats it as gzip).
    std::fstream f(path("img.gz"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(12);
    f.write("\xff\xff\xff\xff\xff\xff", 6);
  }
  EXPECT_THROW(read_idx(path("img.gz"), 3), DataError);
  EXPECT_THROW(read_idx(path("absent.gz"), 3), DataError);
}

TEST_F(DatasetTest, CountMismatchAndBadLabels) {
  write_idx(path("img"), IdxArray{{2, 1, 1}, {1, 2}});
  write_idx(path("lab"), IdxArray{{3}, {1, 2, 3}});
  EXPECT_THROW(load_mnist_idx(path("img"), path("lab")), DataError);
  write_idx(path("lab"), IdxArray{{2}, {1, 12}});
  EXPECT_THROW(load_mnist_idx(path("img"), path("lab")), DataError);
}

TEST_F(DatasetTest, SplitFileErrorsNameFileAndLine) {
  std::ofstream(path("split.txt")) << "0\n2\n# comment\n\n7\n";
  EXPECT_EQ(read_split(path("split.txt"), 10), (std::vector<std::int64_t>{0, 2, 7}));
  EXPECT_THROW(read_split(path("split.txt"), 5), DataError);  // 7 out of range
  std::ofstream(path("dup.txt")) << "1\n1\n";
  EXPECT_THROW(read_split(path("dup.txt"), 5), DataError);
  std::ofstream(path("bad.txt")) << "1\nx2\n";
  try {
    read_split(path("bad.txt"), 5);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:2"), std::string::npos) << e.what();
  }
}

TEST_F(DatasetTest, SelectionRangesAndErrors) {
  std::ofstream(path("s.txt")) << "5\n3\n9\n1\n";
  DatasetConfig ds;
  ds.splits["test"] = path("s.txt");
  EXPECT_EQ(select_indices(ds, 10, {"test", 1, 3, 1}, "c", "/certify/selection"), (std::vector<std::int64_t>{3, 9}));
  EXPECT_EQ(select_indices(ds, 10, {"test", 0, -1, 2}, "c", "/certify/selection"), (std::vector<std::int64_t>{5, 9}));
  EXPECT_EQ(select_indices(ds, 3, {"all", 0, -1, 1}, "c", "/x").size(), 3u);
  EXPECT_THROW(select_indices(ds, 10, {"val", 0, -1, 1}, "c", "/x"), ConfigError);
  EXPECT_THROW(select_indices(ds, 10, {"test", 0, 5, 1}, "c", "/x"), ConfigError);
  EXPECT_THROW(select_indices(ds, 10, {"test", 3, 2, 1}, "c", "/x"), ConfigError);
}

TEST(EmbeddedMnistTest, TenThousandDigitsWithTheDocumentedSplit) {
  const auto ds = load_mnist_idx(mnist("images-idx3-ubyte.gz"), mnist("labels-idx1-ubyte.gz"));
  ASSERT_EQ(ds.size(), 10000);
  EXPECT_EQ(ds.image_shape(), (std::vector<std::int64_t>{1, 28, 28}));
  // Per-class counts as listed in data/mnist/PROVENANCE.md.
  const std::vector<std::int64_t> expected = {1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978};
  std::vector<std::int64_t> counts(10, 0);
  for (auto l : ds.labels()) ++counts[static_cast<std::size_t>(l)];
  EXPECT_EQ(counts, expected);
  const auto train = read_split(mnist("split/train.txt"), ds.size());
  const auto test = read_split(mnist("split/test.txt"), ds.size());
  EXPECT_EQ(train.size(), 8000u);
  EXPECT_EQ(test.size(), 2000u);
  std::vector<bool> seen(10000, false);
  for (auto i : train) seen[static_cast<std::size_t>(i)] = true;
  for (auto i : test) {
    EXPECT_FALSE(seen[static_cast<std::size_t>(i)]) << "index " << i << " in both splits";
    seen[static_cast<std::size_t>(i)] = true;
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](bool b) { return b; }));
  // Real digits: mostly dark background, some bright strokes, pixel range [0, 1].
  const auto x = ds.image(test[0]);
  EXPECT_GE(x.min().item<float>(), 0.0f);
  EXPECT_LE(x.max().item<float>(), 1.0f);
  EXPECT_GT(x.gt(0.5).sum().item<std::int64_t>(), 20);
}

}  // namespace
}  // namespace dualrs::data
