#pragma once
/// \file
/// In-memory image classification datasets and split index lists.

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dualrs/core/config.h"

namespace dualrs::data {

/// Images kept as bytes `[N, C, H, W]` (uint8) with labels; served as float in [0, 1].
class ImageDataset {
 public:
  ImageDataset() = default;
  /// \param images  uint8 `[N, C, H, W]`; \param labels N class indices in [0, num_classes).
  ImageDataset(std::string name, at::Tensor images, std::vector<std::int64_t> labels, std::int64_t num_classes);

  std::int64_t size() const { return static_cast<std::int64_t>(labels_.size()); }
  std::int64_t num_classes() const { return num_classes_; }
  const std::string& name() const { return name_; }
  /// {C, H, W}
  std::vector<std::int64_t> image_shape() const;
  /// Example `idx` as float `[C, H, W]` in [0, 1]. \throws DataError on idx out of range.
  at::Tensor image(std::int64_t idx) const;
  /// Examples as float `[B, C, H, W]` in [0, 1]. \throws DataError on an index out of range.
  at::Tensor batch(const std::vector<std::int64_t>& indices) const;
  std::int64_t label(std::int64_t idx) const;
  const std::vector<std::int64_t>& labels() const { return labels_; }

 private:
  std::string name_;
  at::Tensor images_;
  std::vector<std::int64_t> labels_;
  std::int64_t num_classes_ = 0;
};

/// Loads MNIST-format IDX files: images `[N, 28, 28]`, labels `[N]`, 10 classes.
/// \throws DataError naming the file (missing, corrupt, wrong magic, count mismatch, label > 9).
ImageDataset load_mnist_idx(const std::string& images_path, const std::string& labels_path, std::string name = "mnist");

/// Loads the dataset a config names. \throws DataError, ConfigError.
ImageDataset load_dataset(const DatasetConfig& config);

/// Reads a split file: one dataset index per line (blank lines and '#' comments ignored).
/// \throws DataError naming file and line on a non-integer, out-of-range or repeated index.
std::vector<std::int64_t> read_split(const std::string& path, std::int64_t dataset_size);

/// The dataset indices a selection picks: positions [begin, end) of the split, every skip-th.
/// \throws ConfigError (unknown split, begin/end out of range) naming `source`'s key `pointer`.
std::vector<std::int64_t> select_indices(const DatasetConfig& dataset, std::int64_t dataset_size,
                                         const SelectionConfig& selection, const std::string& source,
                                         const std::string& pointer);

}  // namespace dualrs::data
