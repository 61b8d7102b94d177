#pragma once
/// \file
/// ImageNet ILSVRC-2012 in its folder layout, decoded on demand (the data does not fit in
/// memory): `ROOT/train/<wnid>/*.JPEG`; `ROOT/val/` either flat, with a labels file mapping
/// file name -> wnid, or in `<wnid>/` folders like train; a synset list whose line order fixes
/// the class indices. Each example is decoded (dualrs/data/jpeg.h), its shorter side resized
/// to `resize` and centre-cropped to `crop` (dualrs/data/transforms.h). Layout, accepted file
/// formats and example numbering: `data_schemas/datasets.md`.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dualrs/core/config.h"
#include "dualrs/data/dataset.h"

namespace dualrs::data {

/// Reads a synset list: the first token of each non-blank line is a wnid (so both a plain
/// list and LOC_synset_mapping.txt, "n01440764 tench, Tinca tinca", work); '#' starts a
/// comment line. Line order = class index.
/// \throws DataError naming file and line: missing file, no synsets, a wnid listed twice.
std::vector<std::string> read_synsets(const std::string& path);

/// Every example's file of an ImageNet folder, in example order (val first, then train):
/// folders, and the file names packed into one buffer (1.33 M names on ILSVRC-2012).
struct ImagenetFileList {
  std::vector<std::string> folders;       ///< full folder paths as built from the config's root
  std::vector<std::uint32_t> folder_of;   ///< example -> index into `folders`
  std::string names;                      ///< file names, back to back
  std::vector<std::size_t> name_end;      ///< example -> end of its name in `names`
  std::vector<std::int64_t> labels;       ///< example -> class index (synset line order)
  std::int64_t val_count = 0;             ///< examples [0, val_count) are "val", the rest "train"

  void add(std::uint32_t folder, const std::string& name, std::int64_t label) {
    folder_of.push_back(folder);
    names += name;
    name_end.push_back(names.size());
    labels.push_back(label);
  }
  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
  /// Example `i`'s file name without its folder.
  std::string name(std::int64_t i) const {
    const auto k = static_cast<std::size_t>(i);
    const std::size_t begin = k == 0 ? 0 : name_end[k - 1];
    return names.substr(begin, name_end[k] - begin);
  }
  std::string path(std::int64_t i) const { return folders[folder_of[static_cast<std::size_t>(i)]] + "/" + name(i); }
};

/// Lists the folders named by `config` into a file list (the scan an index file saves): one
/// directory listing per class folder, val/ and train/ (2,002 on ILSVRC-2012 with class
/// folders in val/). Uses the list registered by use_imagenet_file_list instead, if any.
/// \throws DataError as load_imagenet_folder.
ImagenetFileList scan_imagenet_folder(const DatasetConfig& config);

/// What an index of `config`'s tree depends on, read without listing any folder: the root,
/// the synset list's and val labels file's bytes, and (inode, modification time in ns) of
/// val/, train/ and every class folder. Adding, removing or renaming a file changes its
/// folder's modification time; a file rewritten in place under the same name does not.
/// \throws DataError when the synset list or labels file cannot be read.
std::string imagenet_tree_stamp(const DatasetConfig& config);

/// Makes this process's ImageNet loads of `config` (same root, synsets, val_labels) use
/// `list` instead of listing the tree (nullptr: list it again). Thread-safe.
void use_imagenet_file_list(const DatasetConfig& config, std::shared_ptr<const ImagenetFileList> list);

/// Directory listings of ImageNet trees this process has made (each is also printed to
/// stderr when the environment has DUALRS_TRACE_LISTINGS=1).
std::int64_t imagenet_folder_listings();

/// Built-in splits from listing the folders (no image is decoded): "val" first
/// (index = position in (class, file name) order, as torchvision's ImageFolder numbers it, so
/// `skip: 100` picks the same 500 images as Cohen et al.), then "train" in the same order.
/// \throws DataError as load_imagenet_folder.
/// Uses the registered file list when there is one (use_imagenet_file_list).
SplitRanges imagenet_split_ranges(const DatasetConfig& config);

/// Lists and checks the folders named by `config` (root, synsets, val_labels, resize, crop);
/// pixels are decoded when asked for: float `[3, crop, crop]` in [0, 1].
/// \throws DataError naming the file or folder: missing train/ or val/, a synset without a
///         train folder or without images (missing class), a folder or label of a wnid that is
///         not in the synset list (unknown wnid), a val image without a label, a malformed
///         labels line; later, a JPEG that does not decode.
ImageDataset load_imagenet_folder(const DatasetConfig& config, std::string name = "imagenet");

}  // namespace dualrs::data
