#pragma once
/// \file
/// Image classification datasets behind one interface: labels and built-in splits known up
/// front, pixels served as float `[C, H, W]` in [0, 1] from memory (MNIST IDX, CIFAR-10
/// binary) or decoded on demand (ImageNet folder). Formats and their example numbering:
/// `data_schemas/datasets.md`.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dualrs/core/config.h"

namespace dualrs::data {

/// A contiguous range of example indices [begin, end).
struct IndexRange {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t size() const { return end - begin; }
};

/// A format's built-in splits (e.g. CIFAR-10 "test" and "train"): split name -> index range.
using SplitRanges = std::map<std::string, IndexRange>;

/// Where a dataset's pixels come from: a tensor in memory, or files decoded on demand.
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  /// {C, H, W} of every example.
  virtual std::vector<std::int64_t> image_shape() const = 0;
  /// Examples as float `[B, C, H, W]` in [0, 1]; the indices are already range-checked.
  /// \throws DataError naming the file of an example that cannot be read.
  virtual at::Tensor images(const std::vector<std::int64_t>& indices) const = 0;
};

/// A labelled image dataset; cheap to copy (the pixel source is shared and immutable).
class ImageDataset {
 public:
  ImageDataset() = default;
  /// In memory. \param images  uint8 `[N, C, H, W]`; \param labels N class indices in
  /// [0, num_classes); \param splits built-in splits (ranges within [0, N)).
  ImageDataset(std::string name, at::Tensor images, std::vector<std::int64_t> labels, std::int64_t num_classes,
               SplitRanges splits = {});
  /// Pixels from `source` (e.g. decoded on demand); labels and splits as above.
  /// \throws DataError on a label outside [0, num_classes) or a split outside [0, N).
  ImageDataset(std::string name, std::shared_ptr<const ImageSource> source, std::vector<std::int64_t> labels,
               std::int64_t num_classes, SplitRanges splits = {});

  std::int64_t size() const { return static_cast<std::int64_t>(labels_.size()); }
  std::int64_t num_classes() const { return num_classes_; }
  const std::string& name() const { return name_; }
  /// {C, H, W}
  std::vector<std::int64_t> image_shape() const;
  /// Example `idx` as float `[C, H, W]` in [0, 1]. \throws DataError on idx out of range or
  /// an unreadable file.
  at::Tensor image(std::int64_t idx) const;
  /// Examples as float `[B, C, H, W]` in [0, 1]. \throws DataError on an index out of range
  /// or an unreadable file.
  at::Tensor batch(const std::vector<std::int64_t>& indices) const;
  std::int64_t label(std::int64_t idx) const;
  const std::vector<std::int64_t>& labels() const { return labels_; }
  /// The format's built-in splits ("train"/"test" for CIFAR-10, "train"/"val" for ImageNet;
  /// none for MNIST IDX, whose splits are index files).
  const SplitRanges& builtin_splits() const { return splits_; }

 private:
  void check_index(std::int64_t idx) const;
  std::string name_;
  std::shared_ptr<const ImageSource> source_;
  std::vector<std::int64_t> labels_;
  std::int64_t num_classes_ = 0;
  SplitRanges splits_;
};

/// Loads MNIST-format IDX files: images `[N, 28, 28]`, labels `[N]`, 10 classes.
/// \throws DataError naming the file (missing, corrupt, wrong magic, count mismatch, label > 9).
ImageDataset load_mnist_idx(const std::string& images_path, const std::string& labels_path, std::string name = "mnist");

/// The dataset name a config resolves to: /dataset/name, else the format's usual name
/// ("mnist", "cifar10", "imagenet"). Label and estimate files record it.
std::string dataset_name(const DatasetConfig& config);

/// Loads the dataset a config names (format mnist_idx, cifar10_bin or imagenet_folder).
/// \throws DataError (files), ConfigError (unknown format; a split file named like a
///         built-in split).
ImageDataset load_dataset(const DatasetConfig& config);

/// Number of examples of split `split` ("all" = the whole dataset) without reading pixels:
/// split files are counted, CIFAR-10 sizes come from file sizes, ImageNet folders are listed.
/// For `dualrs run --dry-run`. \throws DataError when the files are absent or malformed,
/// ConfigError on an unknown split.
std::int64_t count_split(const DatasetConfig& config, const std::string& split);

/// Reads a split file: one dataset index per line (blank lines and '#' comments ignored).
/// \throws DataError naming file and line on a non-integer, out-of-range or repeated index.
std::vector<std::int64_t> read_split(const std::string& path, std::int64_t dataset_size);

/// The dataset indices a selection picks: positions [begin, end) of the split, every skip-th.
/// The split is a split file of `dataset`, a built-in split of the format (`builtin`), or
/// "all".
/// \throws ConfigError (unknown split, begin/end out of range, no example selected) naming
/// `source`'s key `pointer`.
std::vector<std::int64_t> select_indices(const DatasetConfig& dataset, std::int64_t dataset_size,
                                         const SelectionConfig& selection, const std::string& source,
                                         const std::string& pointer, const SplitRanges& builtin = {});

}  // namespace dualrs::data
