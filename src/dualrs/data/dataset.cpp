#include "dualrs/data/dataset.h"

#include <torch/torch.h>

#include <fstream>
#include <unordered_set>

#include "dualrs/core/error.h"
#include "dualrs/data/cifar10.h"
#include "dualrs/data/idx.h"
#include "dualrs/data/imagenet_folder.h"

namespace dualrs::data {
namespace {

// Pixels held as uint8 [N, C, H, W] in memory.
class TensorImageSource final : public ImageSource {
 public:
  explicit TensorImageSource(at::Tensor images) : images_(std::move(images)) {}
  std::vector<std::int64_t> image_shape() const override { return {images_.size(1), images_.size(2), images_.size(3)}; }
  at::Tensor images(const std::vector<std::int64_t>& indices) const override {
    auto index = torch::tensor(indices, torch::kInt64);
    return images_.index_select(0, index).to(torch::kFloat32).div_(255.0f);
  }

 private:
  at::Tensor images_;
};

std::shared_ptr<const ImageSource> tensor_source(const std::string& name, at::Tensor images, std::size_t count) {
  DUALRS_CHECK(images.dim() == 4 && images.scalar_type() == torch::kUInt8, DataError, "dataset ", name,
               ": images must be uint8 [N, C, H, W]");
  DUALRS_CHECK(images.size(0) == static_cast<std::int64_t>(count), DataError, "dataset ", name, ": ", images.size(0),
               " images but ", count, " labels");
  return std::make_shared<TensorImageSource>(std::move(images));
}

}  // namespace

ImageDataset::ImageDataset(std::string name, at::Tensor images, std::vector<std::int64_t> labels,
                           std::int64_t num_classes, SplitRanges splits)
    : ImageDataset(std::move(name), nullptr, std::move(labels), num_classes, std::move(splits)) {
  source_ = tensor_source(name_, std::move(images), labels_.size());
}

ImageDataset::ImageDataset(std::string name, std::shared_ptr<const ImageSource> source, std::vector<std::int64_t> labels,
                           std::int64_t num_classes, SplitRanges splits)
    : name_(std::move(name)), source_(std::move(source)), labels_(std::move(labels)), num_classes_(num_classes),
      splits_(std::move(splits)) {
  for (std::size_t i = 0; i < labels_.size(); ++i) {
    DUALRS_CHECK(labels_[i] >= 0 && labels_[i] < num_classes_, DataError, "dataset ", name_, ": example ", i,
                 " has label ", labels_[i], " outside [0, ", num_classes_, ")");
  }
  for (const auto& [split, range] : splits_) {
    DUALRS_CHECK(range.begin >= 0 && range.begin <= range.end && range.end <= size(), DataError, "dataset ", name_,
                 ": split '", split, "' [", range.begin, ", ", range.end, ") is outside [0, ", size(), ")");
  }
}

std::vector<std::int64_t> ImageDataset::image_shape() const { return source_->image_shape(); }

void ImageDataset::check_index(std::int64_t idx) const {
  DUALRS_CHECK(idx >= 0 && idx < size(), DataError, "dataset ", name_, ": example index ", idx, " out of range [0, ",
               size(), ")");
}

at::Tensor ImageDataset::image(std::int64_t idx) const {
  check_index(idx);
  return source_->images({idx})[0];
}

at::Tensor ImageDataset::batch(const std::vector<std::int64_t>& indices) const {
  for (auto idx : indices) check_index(idx);
  return source_->images(indices);
}

std::int64_t ImageDataset::label(std::int64_t idx) const {
  check_index(idx);
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

std::string dataset_name(const DatasetConfig& config) {
  if (!config.name.empty()) return config.name;
  if (config.format == DatasetFormat::kCifar10Bin) return "cifar10";
  if (config.format == DatasetFormat::kImagenetFolder) return "imagenet";
  return "mnist";
}

namespace {
// Split files may not reuse a built-in split's name: the two would disagree silently.
void check_split_names(const DatasetConfig& config, const ImageDataset& dataset) {
  for (const auto& [name, path] : config.splits) {
    if (dataset.builtin_splits().count(name) != 0) {
      throw ConfigError("", "/dataset/splits/" + name,
                        "'" + name + "' is a built-in split of format " + to_string(config.format) + "; give the split file another name");
    }
  }
}

std::int64_t count_split_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) DUALRS_THROW(DataError, "cannot open split file ", path);
  std::int64_t count = 0;
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first != std::string::npos && line[first] != '#') ++count;
  }
  return count;
}
}  // namespace

ImageDataset load_dataset(const DatasetConfig& config) {
  ImageDataset dataset;
  if (config.format == DatasetFormat::kMnistIdx) {
    dataset = load_mnist_idx(config.images, config.labels, dataset_name(config));
  } else if (config.format == DatasetFormat::kCifar10Bin) {
    dataset = load_cifar10_bin(config.root, dataset_name(config));
  } else if (config.format == DatasetFormat::kImagenetFolder) {
    dataset = load_imagenet_folder(config, dataset_name(config));
  } else {
    throw ConfigError("", "/dataset/format", "unsupported dataset format '" + to_string(config.format) + "'");
  }
  check_split_names(config, dataset);
  return dataset;
}

std::int64_t count_split(const DatasetConfig& config, const std::string& split) {
  if (auto it = config.splits.find(split); it != config.splits.end()) return count_split_file(it->second);
  SplitRanges builtin;
  if (config.format == DatasetFormat::kCifar10Bin) builtin = cifar10_split_ranges(config.root);
  if (config.format == DatasetFormat::kImagenetFolder) builtin = imagenet_split_ranges(config);
  if (split == "all") {
    if (config.format == DatasetFormat::kMnistIdx) return read_idx(config.labels, 1).dims[0];
    std::int64_t total = 0;
    for (const auto& [name, range] : builtin) total = std::max(total, range.end);
    return total;
  }
  if (auto it = builtin.find(split); it != builtin.end()) return it->second.size();
  throw ConfigError("", "", "unknown split '" + split + "'");
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
                                         const std::string& pointer, const SplitRanges& builtin) {
  std::vector<std::int64_t> split;
  if (selection.split == "all") {
    split.resize(static_cast<std::size_t>(dataset_size));
    for (std::int64_t i = 0; i < dataset_size; ++i) split[static_cast<std::size_t>(i)] = i;
  } else if (auto range = builtin.find(selection.split); range != builtin.end()) {
    for (std::int64_t i = range->second.begin; i < range->second.end; ++i) split.push_back(i);
  } else {
    auto it = dataset.splits.find(selection.split);
    if (it == dataset.splits.end()) {
      std::string known;
      for (const auto& [name, r] : builtin) known += (known.empty() ? "" : ", ") + name;
      for (const auto& [name, file] : dataset.splits) known += (known.empty() ? "" : ", ") + name;
      throw ConfigError(source, pointer + "/split",
                        "unknown split '" + selection.split + "' (the dataset defines: " +
                            (known.empty() ? "none" : known) + "; 'all' means every example)");
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
  if (selection.begin == end) {
    // Zero examples would "succeed" with empty results and a table of zeros.
    throw ConfigError(source, pointer, "selects no examples: begin = end = " + std::to_string(end) + " (split of " +
                                           std::to_string(size) + " examples)");
  }
  std::vector<std::int64_t> out;
  for (std::int64_t i = selection.begin; i < end; i += std::max<std::int64_t>(1, selection.skip)) {
    out.push_back(split[static_cast<std::size_t>(i)]);
  }
  return out;
}

}  // namespace dualrs::data
