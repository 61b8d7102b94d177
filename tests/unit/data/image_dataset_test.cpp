// CIFAR-10 binary and ImageNet folder datasets, on files in exactly those formats: CIFAR-10
// batches written byte by byte here; a tiny ILSVRC-2012 tree of PIL-encoded JPEGs with PIL's
// decoded pixels and torch's resize + crop (tests/reference/make_image_reference.py).

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "dualrs/core/error.h"
#include "dualrs/data/cifar10.h"
#include "dualrs/data/dataset.h"
#include "dualrs/data/imagenet_folder.h"
#include "dualrs/data/jpeg.h"
#include "dualrs/data/transforms.h"

namespace dualrs::data {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

class ImageDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("dualrs_image_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// --- CIFAR-10 ------------------------------------------------------------------------------

// Byte (c, y, x) of record r of file f, and its label: a pattern every record makes distinct.
std::uint8_t cifar_pixel(int f, int r, int c, int y, int x) { return static_cast<std::uint8_t>((f * 31 + r * 17 + c * 101 + y * 3 + x) % 256); }
std::uint8_t cifar_label(int f, int r) { return static_cast<std::uint8_t>((f * 7 + r) % 10); }

// File f = 0 is test_batch.bin, f = 1..5 data_batch_f.bin; `records[f]` records each.
void write_cifar(const fs::path& root, const std::vector<int>& records) {
  fs::create_directories(root);
  for (int f = 0; f < 6; ++f) {
    const std::string name = f == 0 ? "test_batch.bin" : "data_batch_" + std::to_string(f) + ".bin";
    std::ofstream out(root / name, std::ios::binary);
    for (int r = 0; r < records[static_cast<std::size_t>(f)]; ++r) {
      out.put(static_cast<char>(cifar_label(f, r)));
      for (int c = 0; c < 3; ++c)  // R plane, then G, then B; each 32 x 32 row-major
        for (int y = 0; y < 32; ++y)
          for (int x = 0; x < 32; ++x) out.put(static_cast<char>(cifar_pixel(f, r, c, y, x)));
    }
  }
}

void expect_data_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no DataError";
  } catch (const DataError& e) {
    for (const auto& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST_F(ImageDatasetTest, Cifar10RecordsTestFirstThenTrainInFileOrder) {
  const std::vector<int> records{3, 2, 1, 2, 1, 2};
  write_cifar(dir_ / "cifar", records);
  const ImageDataset ds = load_cifar10_bin(path("cifar"));
  ASSERT_EQ(ds.size(), 11);
  EXPECT_EQ(ds.num_classes(), 10);
  EXPECT_EQ(ds.image_shape(), (std::vector<std::int64_t>{3, 32, 32}));
  EXPECT_EQ(ds.builtin_splits().at("test").begin, 0);
  EXPECT_EQ(ds.builtin_splits().at("test").end, 3);
  EXPECT_EQ(ds.builtin_splits().at("train").begin, 3);
  EXPECT_EQ(ds.builtin_splits().at("train").end, 11);
  std::int64_t idx = 0;
  for (int f = 0; f < 6; ++f) {
    for (int r = 0; r < records[static_cast<std::size_t>(f)]; ++r, ++idx) {
      EXPECT_EQ(ds.label(idx), cifar_label(f, r));
      const at::Tensor img = ds.image(idx);
      for (auto [c, y, x] : {std::array<int, 3>{0, 0, 0}, {1, 5, 7}, {2, 31, 31}, {2, 0, 31}}) {
        EXPECT_FLOAT_EQ(img[c][y][x].item<float>(), cifar_pixel(f, r, c, y, x) / 255.0f) << idx << " " << c << y << x;
      }
    }
  }
  const at::Tensor batch = ds.batch({10, 0});
  EXPECT_TRUE(batch[0].equal(ds.image(10)));
  EXPECT_TRUE(batch[1].equal(ds.image(0)));
  const auto ranges = cifar10_split_ranges(path("cifar"));
  EXPECT_EQ(ranges.at("train").end, 11);
  DatasetConfig config;
  config.format = DatasetFormat::kCifar10Bin;
  config.root = path("cifar");
  EXPECT_EQ(count_split(config, "train"), 8);
  EXPECT_EQ(count_split(config, "all"), 11);
  EXPECT_EQ(select_indices(config, ds.size(), {"train", 1, -1, 3}, "c", "/x", ds.builtin_splits()),
            (std::vector<std::int64_t>{4, 7, 10}));
}

TEST_F(ImageDatasetTest, Cifar10TruncatedFileNamesFileAndRecord) {
  write_cifar(dir_ / "cifar", {2, 1, 1, 2, 1, 1});
  fs::resize_file(dir_ / "cifar" / "data_batch_3.bin", 2 * kCifar10RecordBytes - 5);
  expect_data_error([&] { load_cifar10_bin(path("cifar")); }, {"data_batch_3.bin", "record 1 is truncated"});
  expect_data_error([&] { cifar10_split_ranges(path("cifar")); }, {"data_batch_3.bin"});
}

TEST_F(ImageDatasetTest, Cifar10MissingFileAndBadLabelAreErrors) {
  write_cifar(dir_ / "cifar", {1, 1, 1, 1, 1, 1});
  fs::remove(dir_ / "cifar" / "test_batch.bin");
  expect_data_error([&] { load_cifar10_bin(path("cifar")); }, {"test_batch.bin"});
  write_cifar(dir_ / "cifar", {1, 1, 1, 1, 1, 2});
  {
    std::fstream f(dir_ / "cifar" / "data_batch_5.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(kCifar10RecordBytes);
    f.put(static_cast<char>(12));
  }
  expect_data_error([&] { load_cifar10_bin(path("cifar")); }, {"data_batch_5.bin", "record 1", "label byte 12"});
}

TEST_F(ImageDatasetTest, SplitFileMayNotShadowABuiltinSplit) {
  write_cifar(dir_ / "cifar", {1, 1, 1, 1, 1, 1});
  std::ofstream(path("few.txt")) << "0\n";
  DatasetConfig config;
  config.format = DatasetFormat::kCifar10Bin;
  config.root = path("cifar");
  config.splits = {{"train", path("few.txt")}};
  EXPECT_THROW(load_dataset(config), ConfigError);
  config.splits = {{"few", path("few.txt")}};
  const ImageDataset ds = load_dataset(config);
  EXPECT_EQ(ds.name(), "cifar10");
  EXPECT_EQ(select_indices(config, ds.size(), {"few", 0, -1, 1}, "c", "/x", ds.builtin_splits()),
            (std::vector<std::int64_t>{0}));
  EXPECT_THROW(select_indices(config, ds.size(), {"val", 0, -1, 1}, "c", "/x", ds.builtin_splits()), ConfigError);
}

// --- transforms ----------------------------------------------------------------------------

TEST(TransformsTest, ResizedSizeFollowsTorchvision) {
  // torchvision Resize(256): shorter side 256, longer int(256 * long / short) (truncated).
  EXPECT_EQ(resized_size(375, 500, 256), (std::pair<std::int64_t, std::int64_t>{256, 341}));
  EXPECT_EQ(resized_size(500, 375, 256), (std::pair<std::int64_t, std::int64_t>{341, 256}));
  EXPECT_EQ(resized_size(300, 300, 256), (std::pair<std::int64_t, std::int64_t>{256, 256}));
  EXPECT_EQ(resized_size(3, 1000, 256), (std::pair<std::int64_t, std::int64_t>{256, 85333}));
  EXPECT_THROW(resized_size(0, 5, 256), DataError);
}

TEST(TransformsTest, CenterCropRoundsHalfToEvenAndRefusesSmallImages) {
  const at::Tensor x = torch::arange(33, torch::kFloat32).view({1, 1, 33}).expand({1, 20, 33}).contiguous();
  // (33 - 16) / 2 = 8.5 -> 8 (Python's round), not 9.
  EXPECT_EQ(center_crop(x, 16)[0][0][0].item<float>(), 8.0f);
  const at::Tensor y = torch::arange(35, torch::kFloat32).view({1, 1, 35}).expand({1, 20, 35}).contiguous();
  EXPECT_EQ(center_crop(y, 16)[0][0][0].item<float>(), 10.0f);  // 9.5 -> 10
  EXPECT_THROW(center_crop(x, 21), DataError);
}

// --- ImageNet folder -----------------------------------------------------------------------

std::string tiny_root() { return std::string(DUALRS_TEST_DATA_DIR) + "/imagenet_tiny"; }

json tiny_reference() {
  std::ifstream in(std::string(DUALRS_TEST_DATA_DIR) + "/imagenet_tiny_reference.json");
  return json::parse(in);
}

DatasetConfig tiny_config(const std::string& root, bool flat_val = true) {
  DatasetConfig c;
  c.format = DatasetFormat::kImagenetFolder;
  c.root = root;
  c.synsets = root + "/synsets.txt";
  if (flat_val) c.val_labels = root + "/val_labels.txt";
  c.resize = 20;
  c.crop = 16;
  return c;
}

std::vector<std::uint8_t> from_hex(const std::string& hex) {
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

TEST(JpegTest, DecodedPixelsEqualPil) {
  // PIL and TurboJPEG share libjpeg-turbo's ISLOW IDCT and fancy upsampling: exact equality,
  // for RGB 4:2:0 / 4:2:2 / 4:4:4, progressive, greyscale and Adobe CMYK files.
  for (const auto& e : tiny_reference().at("examples")) {
    const at::Tensor decoded = read_jpeg_file(tiny_root() + "/" + e.at("file").get<std::string>());
    ASSERT_EQ(decoded.sizes(), (at::IntArrayRef{3, e.at("height").get<std::int64_t>(), e.at("width").get<std::int64_t>()}));
    const auto expected = from_hex(e.at("decoded").get<std::string>());
    const at::Tensor want = torch::from_blob(const_cast<std::uint8_t*>(expected.data()), decoded.sizes(), torch::kUInt8);
    EXPECT_TRUE(decoded.equal(want)) << e.at("file") << " (" << e.at("kind") << "): max difference "
                                     << (decoded.to(torch::kInt32) - want.to(torch::kInt32)).abs().max().item<int>();
  }
}

TEST(JpegTest, CorruptTruncatedPngAndMissingFilesNameTheFile) {
  const fs::path dir = fs::temp_directory_path() / ("dualrs_jpeg_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string good = tiny_root() + "/val/ILSVRC2012_val_00000002.JPEG";
  std::ifstream in(good, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream((dir / "garbage.JPEG").string(), std::ios::binary) << "this is not a jpeg at all";
  std::ofstream((dir / "truncated.JPEG").string(), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  std::ofstream((dir / "png.JPEG").string(), std::ios::binary) << "\x89PNG\r\n\x1a\n rest";
  expect_data_error([&] { read_jpeg_file((dir / "garbage.JPEG").string()); }, {"garbage.JPEG"});
  expect_data_error([&] { read_jpeg_file((dir / "truncated.JPEG").string()); }, {"truncated.JPEG", "truncated"});
  expect_data_error([&] { read_jpeg_file((dir / "png.JPEG").string()); }, {"png.JPEG", "PNG"});
  expect_data_error([&] { read_jpeg_file((dir / "absent.JPEG").string()); }, {"absent.JPEG"});
  fs::remove_all(dir);
}

TEST(ImageNetFolderTest, OrderLabelsAndPixelsMatchTheReference) {
  const json ref = tiny_reference();
  const ImageDataset ds = load_dataset(tiny_config(tiny_root()));
  EXPECT_EQ(ds.name(), "imagenet");
  ASSERT_EQ(ds.size(), static_cast<std::int64_t>(ref.at("examples").size()));
  EXPECT_EQ(ds.num_classes(), 3);
  EXPECT_EQ(ds.image_shape(), (std::vector<std::int64_t>{3, 16, 16}));
  EXPECT_EQ(ds.builtin_splits().at("val").size(), ref.at("num_val").get<std::int64_t>());
  EXPECT_EQ(ds.builtin_splits().at("train").begin, ref.at("num_val").get<std::int64_t>());
  EXPECT_EQ(ds.builtin_splits().at("train").end, ds.size());
  for (const auto& e : ref.at("examples")) {
    const auto idx = e.at("index").get<std::int64_t>();
    EXPECT_EQ(ds.label(idx), e.at("label").get<std::int64_t>()) << e.at("file");
    const auto values = e.at("transformed").get<std::vector<float>>();
    const at::Tensor want = torch::tensor(values).view({3, 16, 16});
    const double diff = (ds.image(idx) - want).abs().max().item<double>();
    EXPECT_LE(diff, 1e-6) << e.at("file") << " (" << e.at("kind") << ")";
  }
  // A batch is the stacked images (decoded in parallel, order kept).
  const at::Tensor batch = ds.batch({8, 0, 4});
  EXPECT_TRUE(batch[0].equal(ds.image(8)));
  EXPECT_TRUE(batch[2].equal(ds.image(4)));
  EXPECT_EQ(count_split(tiny_config(tiny_root()), "val"), 4);
  EXPECT_EQ(count_split(tiny_config(tiny_root()), "all"), ds.size());
}

class ImageNetTreeTest : public ImageDatasetTest {
 protected:
  void SetUp() override {
    ImageDatasetTest::SetUp();
    fs::copy(tiny_root(), dir_ / "tree", fs::copy_options::recursive);
    root_ = path("tree");
  }
  std::string root_;
};

TEST_F(ImageNetTreeTest, ValInClassFoldersAndKaggleLabelsGiveTheSameDataset) {
  const ImageDataset flat = load_dataset(tiny_config(root_));
  const at::Tensor flat_val = flat.batch({0, 1, 2, 3});
  {
    std::ofstream csv(path("LOC_val_solution.csv"));
    csv << "ImageId,PredictionString\n";
    csv << "ILSVRC2012_val_00000003,n01484850 1 2 30 40\nILSVRC2012_val_00000001,n01443537 0 0 5 5 n01443537 1 1 2 2\n";
    csv << "ILSVRC2012_val_00000002,n01440764 1 2 3 4\nILSVRC2012_val_00000004,n01443537 1 2 3 4\n";
    csv << "ILSVRC2012_val_00000099,n01440764 1 2 3 4\n";  // a file not in this val/ subset: fine
  }
  DatasetConfig kaggle = tiny_config(root_);
  kaggle.val_labels = path("LOC_val_solution.csv");
  const ImageDataset from_csv = load_dataset(kaggle);
  EXPECT_EQ(from_csv.labels(), flat.labels());
  for (const auto& [file, wnid] : std::vector<std::pair<std::string, std::string>>{
           {"ILSVRC2012_val_00000001.JPEG", "n01443537"}, {"ILSVRC2012_val_00000002.JPEG", "n01440764"},
           {"ILSVRC2012_val_00000003.JPEG", "n01484850"}, {"ILSVRC2012_val_00000004.JPEG", "n01443537"}}) {
    fs::create_directories(fs::path(root_) / "val" / wnid);
    fs::rename(fs::path(root_) / "val" / file, fs::path(root_) / "val" / wnid / file);
  }
  const ImageDataset folders = load_dataset(tiny_config(root_, false));
  EXPECT_EQ(folders.labels(), flat.labels());
  EXPECT_TRUE(folders.batch({0, 1, 2, 3}).equal(flat_val));
}

TEST_F(ImageNetTreeTest, CorruptJpegNamesTheFileWhenDecoded) {
  std::ofstream(fs::path(root_) / "train" / "n01443537" / "n01443537_1.JPEG", std::ios::binary | std::ios::trunc)
      << "\xff\xd8\xff garbage";
  const ImageDataset ds = load_dataset(tiny_config(root_));  // listing does not decode
  expect_data_error([&] { ds.image(6); }, {"n01443537_1.JPEG"});
  expect_data_error([&] { ds.batch({0, 6}); }, {"n01443537_1.JPEG"});
  EXPECT_NO_THROW(ds.image(5));
}

TEST_F(ImageNetTreeTest, MissingClassUnknownWnidAndUnlabelledFilesAreErrors) {
  const fs::path root(root_);
  fs::rename(root / "train" / "n01484850", path("moved"));
  expect_data_error([&] { load_dataset(tiny_config(root_)); }, {"missing class", "n01484850"});
  fs::create_directories(root / "train" / "n01484850");
  expect_data_error([&] { load_dataset(tiny_config(root_)); }, {"missing class", "n01484850", "no .JPEG"});
  fs::remove_all(root / "train" / "n01484850");
  fs::rename(path("moved"), root / "train" / "n01484850");

  fs::create_directories(root / "train" / "n09999999");
  expect_data_error([&] { load_dataset(tiny_config(root_)); }, {"n09999999", "not in the synset list"});
  fs::remove_all(root / "train" / "n09999999");

  std::ofstream(root / "val_labels.txt", std::ios::app) << "ILSVRC2012_val_00000005.JPEG n07777777\n";
  expect_data_error([&] { load_dataset(tiny_config(root_)); }, {"val_labels.txt:5", "n07777777"});
  std::ofstream(root / "val_labels.txt", std::ios::trunc) << "ILSVRC2012_val_00000001.JPEG n01443537\n";
  expect_data_error([&] { load_dataset(tiny_config(root_)); }, {"ILSVRC2012_val_00000002.JPEG", "no label"});

  expect_data_error([&] { read_synsets(path("absent.txt")); }, {"absent.txt"});
  std::ofstream(path("dup.txt")) << "n01440764 a\n\nn01443537\nn01440764 again\n";
  expect_data_error([&] { read_synsets(path("dup.txt")); }, {"dup.txt:4", "listed twice"});
  fs::remove_all(root / "val");
  expect_data_error([&] { load_dataset(tiny_config(root_)); }, {"no val/"});
}

}  // namespace
}  // namespace dualrs::data
