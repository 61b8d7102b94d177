#include "dualrs/data/dataset.h"

#include <torch/torch.h>

#include <fstream>
#include <unordered_set>

#include "dualrs/core/error.h"
#include "dualrs/data/idx.h"

namespace dualrs::data {

ImageDataset::ImageDataset(std::string name, at::Tensor images, std::vector<std::int64_t> labels,
                           std::int64_t num_classes)
    : name_(std::move(name)), images_(std::move(images)), labels_(std::move(labels)), num_classes_(num_classes) {
  DUALRS_CHECK(images_.dim() == 4 && images_.scalar_type() == torch::kUInt8, DataError,
               "dataset ", name_, ": images must be uint8 [N, C, H, W]");
  DUALRS_CHECK(images_.size(0) == static_cast<std::int64_t>(labels_.size()), DataError, "dataset ", name_, ": ",
               images_.size(0), " images but ", labels_.size(), " labels");
}

std::vector<std::int64_t> ImageDataset::image_shape() const {
  return {images_.size(1), images_.size(2), images_.size(3)};
}

at::Tensor ImageDataset::image(std::int64_t idx) const {
  DUALRS_CHECK(idx >= 0 && idx < size(), DataError, "dataset ", name_, ": example index ", idx,
               " out of range [0, ", size(), ")");
  return images_[idx].to(torch::kFloat32).div_(255.0f);
}

at::Tensor ImageDataset::batch(const std::vector<std::int64_t>& indices) const {
  for (auto idx : indices) {
    DUALRS_CHECK(idx >= 0 && idx < size(), DataError, "dataset ", name_, ": example index ", idx,
                 " out of range [0, ", size(), ")");
  }
  auto index = torch::tensor(indices, torch::kInt64);
  return images_.index_select(0, index).to(torch::kFloat32).div_(255.0f);
}

std::int64_t ImageDataset::label(std::int64_t idx) const {
  DUALRS_CHECK(idx >= 0 && idx < size(), DataError, "dataset ", name_, ": example index ", idx, " out of range");
  return labels_[static_cast<std::size_t>(idx)];
}

ImageDataset load_mnist_idx(const std::string& images_path, const std::string& labels_path, std::string name) {
  IdxArray images = read_idx(images_path, 3);
  IdxArray labels = read_idx(labels_path, 1);
  if (images.dims[0] != labels.dims[0]) {
    DUALRS_THROW(DataError, images_path, " holds ", images.dims[0], " images but ", labels_path, " holds ",
                 labels.dims[0], " labels");
  }
  std::vector<std::int64_t> label_values(labels.data.begin(), labels.data.end());
  for (std::size_t i = 0; i < label_values.size(); ++i) {
    if (label_values[i] > 9) DUALRS_THROW(DataError, labels_path, ": label ", label_values[i], " of example ", i, " is not a digit 0-9");
  }
  const auto n = images.dims[0], h = images.dims[1], w = images.dims[2];
  at::Tensor tensor = torch::from_blob(images.data.data(), {n, 1, h, w}, torch::kUInt8).clone();
  return ImageDataset(std::move(name), tensor, std::move(label_values), 10);
}

ImageDataset load_dataset(const DatasetConfig& config) {
  if (config.format == "mnist_idx") {
    return load_mnist_idx(config.images, config.labels, config.name.empty() ? "mnist" : config.name);
  }
  throw ConfigError("", "/dataset/format", "unsupported dataset format '" + config.format + "'");
}

std::vector<std::int64_t> read_split(const std::string& path, std::int64_t dataset_size) {
  std::ifstream in(path);
  if (!in) DUALRS_THROW(DataError, "cannot open split file ", path);
  std::vector<std::int64_t> out;
  std::unordered_set<std::int64_t> seen;
  std::string line;
  for (std::int64_t line_no = 1; std::getline(in, line); ++line_no) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    std::size_t used = 0;
    std::int64_t value = -1;
    try {
      value = std::stoll(line.substr(first), &used);
    } catch (const std::exception&) {
      DUALRS_THROW(DataError, path, ":", line_no, ": not an example index: '", line, "'");
    }
    if (line.find_first_not_of(" \t\r", first + used) != std::string::npos) {
      DUALRS_THROW(DataError, path, ":", line_no, ": not an example index: '", line, "'");
    }
    if (value < 0 || value >= dataset_size) {
      DUALRS_THROW(DataError, path, ":", line_no, ": index ", value, " outside the dataset [0, ", dataset_size, ")");
    }
    if (!seen.insert(value).second) DUALRS_THROW(DataError, path, ":", line_no, ": index ", value, " listed twice");
    out.push_back(value);
  }
  return out;
}

std::vector<std::int64_t> select_indices(const DatasetConfig& dataset, std::int64_t dataset_size,
                                         const SelectionConfig& selection, const std::string& source,
                                         const std::string& pointer) {
  std::vector<std::int64_t> split;
  if (selection.split == "all") {
    split.resize(static_cast<std::size_t>(dataset_size));
    for (std::int64_t i = 0; i < dataset_size; ++i) split[static_cast<std::size_t>(i)] = i;
  } else {
    auto it = dataset.splits.find(selection.split);
    if (it == dataset.splits.end()) {
      throw ConfigError(source, pointer + "/split",
                        "unknown split '" + selection.split + "' (the dataset defines " +
                            std::to_string(dataset.splits.size()) + " splits; 'all' means every example)");
    }
    split = read_split(it->second, dataset_size);
  }
  const auto size = static_cast<std::int64_t>(split.size());
  const std::int64_t end = selection.end < 0 ? size : selection.end;
  if (end > size) {
    throw ConfigError(source, pointer + "/end",
                      "end " + std::to_string(end) + " is past the split's " + std::to_string(size) + " examples");
  }
  if (selection.begin > end) {
    throw ConfigError(source, pointer + "/begin",
                      "begin " + std::to_string(selection.begin) + " is after end " + std::to_string(end));
  }
  std::vector<std::int64_t> out;
  for (std::int64_t i = selection.begin; i < end; i += std::max<std::int64_t>(1, selection.skip)) {
    out.push_back(split[static_cast<std::size_t>(i)]);
  }
  return out;
}

}  // namespace dualrs::data
