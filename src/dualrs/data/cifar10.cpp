#include "dualrs/data/cifar10.h"

#include <torch/torch.h>

#include <filesystem>
#include <cstring>
#include <fstream>

#include "dualrs/core/error.h"

namespace dualrs::data {
namespace fs = std::filesystem;

namespace {
constexpr std::int64_t kPixelBytes = kCifar10RecordBytes - 1;

// Records in a batch file, from its size. \throws DataError (missing, empty, truncated).
std::int64_t record_count(const std::string& path) {
  std::error_code ec;
  const auto bytes = static_cast<std::int64_t>(fs::file_size(path, ec));
  if (ec) DUALRS_THROW(DataError, "cannot read CIFAR-10 batch file ", path, ": ", ec.message());
  if (bytes == 0) DUALRS_THROW(DataError, path, ": empty CIFAR-10 batch file");
  if (bytes % kCifar10RecordBytes != 0) {
    DUALRS_THROW(DataError, path, ": ", bytes, " bytes is not a whole number of ", kCifar10RecordBytes,
                 "-byte records: record ", bytes / kCifar10RecordBytes, " is truncated (",
                 bytes % kCifar10RecordBytes, " of ", kCifar10RecordBytes, " bytes)");
  }
  return bytes / kCifar10RecordBytes;
}
}  // namespace

std::vector<std::string> cifar10_files(const std::string& root) {
  std::vector<std::string> files{(fs::path(root) / "test_batch.bin").string()};
  for (int i = 1; i <= 5; ++i) files.push_back((fs::path(root) / ("data_batch_" + std::to_string(i) + ".bin")).string());
  return files;
}

SplitRanges cifar10_split_ranges(const std::string& root) {
  const auto files = cifar10_files(root);
  const std::int64_t test = record_count(files[0]);
  std::int64_t end = test;
  for (std::size_t f = 1; f < files.size(); ++f) end += record_count(files[f]);
  return {{"test", {0, test}}, {"train", {test, end}}};
}

ImageDataset load_cifar10_bin(const std::string& root, std::string name) {
  const auto files = cifar10_files(root);
  const SplitRanges splits = cifar10_split_ranges(root);
  const std::int64_t total = splits.at("train").end;
  at::Tensor images = torch::empty({total, 3, 32, 32}, torch::kUInt8);
  std::uint8_t* pixels = images.data_ptr<std::uint8_t>();
  std::vector<std::int64_t> labels;
  labels.reserve(static_cast<std::size_t>(total));
  std::vector<char> record(static_cast<std::size_t>(kCifar10RecordBytes));
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) DUALRS_THROW(DataError, "cannot open CIFAR-10 batch file ", path);
    for (std::int64_t r = 0; in.read(record.data(), kCifar10RecordBytes); ++r) {
      const auto label = static_cast<std::uint8_t>(record[0]);
      if (label > 9) DUALRS_THROW(DataError, path, ": record ", r, " has label byte ", int{label}, " (expected 0-9)");
      std::memcpy(pixels + static_cast<std::int64_t>(labels.size()) * kPixelBytes, record.data() + 1,
                  static_cast<std::size_t>(kPixelBytes));
      labels.push_back(label);
    }
    if (in.gcount() != 0) DUALRS_THROW(DataError, path, ": changed while being read (truncated record)");
  }
  if (static_cast<std::int64_t>(labels.size()) != total) {
    DUALRS_THROW(DataError, root, ": read ", labels.size(), " CIFAR-10 records but the file sizes promise ", total);
  }
  return ImageDataset(std::move(name), images, std::move(labels), 10, splits);
}

}  // namespace dualrs::data
