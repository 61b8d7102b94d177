#pragma once
/// \file
/// ImageNet ILSVRC-2012 in its folder layout, decoded on demand (the data does not fit in
/// memory): `ROOT/train/<wnid>/*.JPEG`; `ROOT/val/` either flat, with a labels file mapping
/// file name -> wnid, or in `<wnid>/` folders like train; a synset list whose line order fixes
/// the class indices. Each example is decoded (dualrs/data/jpeg.h), its shorter side resized
/// to `resize` and centre-cropped to `crop` (dualrs/data/transforms.h). Layout, accepted file
/// formats and example numbering: `data_schemas/datasets.md`.

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

/// Built-in splits from listing the folders (no image is decoded): "val" first
/// (index = position in (class, file name) order, as torchvision's ImageFolder numbers it, so
/// `skip: 100` picks the same 500 images as Cohen et al.), then "train" in the same order.
/// \throws DataError as load_imagenet_folder.
SplitRanges imagenet_split_ranges(const DatasetConfig& config);

/// Lists and checks the folders named by `config` (root, synsets, val_labels, resize, crop);
/// pixels are decoded when asked for: float `[3, crop, crop]` in [0, 1].
/// \throws DataError naming the file or folder: missing train/ or val/, a synset without a
///         train folder or without images (missing class), a folder or label of a wnid that is
///         not in the synset list (unknown wnid), a val image without a label, a malformed
///         labels line; later, a JPEG that does not decode.
ImageDataset load_imagenet_folder(const DatasetConfig& config, std::string name = "imagenet");

}  // namespace dualrs::data
