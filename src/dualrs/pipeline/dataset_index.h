#pragma once
/// \file
/// The cached file index of an ImageNet folder (docs/cluster.md §8b): listing the 2,002
/// folders and 1.33 M files of ILSVRC-2012 once, on one rank, instead of on every rank of a
/// 128-rank job at every stage. Rank 0 checks the index file next to the outputs against the
/// tree (a stamp read with one stat per folder, no listing), rebuilds it when it is missing,
/// stale, corrupt or of another dataset, and the other ranks read the file without touching
/// the tree's metadata.
#include <cstdint>
#include <memory>
#include <string>

#include "dualrs/core/config.h"
#include "dualrs/data/imagenet_folder.h"

namespace dualrs::pipeline {

struct StageContext;

/// Where the index of `config`'s tree lives under the output folder `dir`:
/// DIR/dataset_index/imagenet-<12 hex digits of the root, synsets and val_labels paths>.tsv.
std::string dataset_index_path(const DatasetConfig& config, const std::string& dir);

/// Writes `list` as the index of `config` at `path` (atomically), with the SHA-256 of the
/// tree stamp `stamp` (data::imagenet_tree_stamp) and of its own body.
/// \throws IoError when the file cannot be written.
void write_dataset_index(const std::string& path, const DatasetConfig& config, const data::ImagenetFileList& list,
                         const std::string& stamp);

/// What read_dataset_index found.
struct DatasetIndexFile {
  std::shared_ptr<const data::ImagenetFileList> list;  ///< nullptr when unusable (see `problem`)
  std::string stamp_sha256;                            ///< the tree stamp it was built from
  std::string created_utc;
  std::string problem;  ///< why it is unusable: missing, not an index, corrupt, of another dataset
};

/// Reads and checks the index file at `path` (format, body digest, counts, and that it is of
/// `config`'s root, synsets and val_labels). Reads no folder of the tree. Never throws for a
/// bad file: `problem` says what is wrong.
DatasetIndexFile read_dataset_index(const std::string& path, const DatasetConfig& config);

/// What refresh_dataset_index did.
struct DatasetIndexOutcome {
  std::shared_ptr<const data::ImagenetFileList> list;
  std::string action;  ///< "fresh" (used as it was), "built" (there was none) or "rebuilt"
  std::string reason;  ///< for "rebuilt": why the old file was not used
  double seconds = 0;  ///< time spent, stamp and scan included
};

/// Uses the index at `path` when it matches the tree, else scans the tree and writes a new
/// one. \throws DataError as data::load_imagenet_folder (the tree itself is bad), IoError.
DatasetIndexOutcome refresh_dataset_index(const DatasetConfig& config, const std::string& path);

/// Collective. For an imagenet_folder dataset: rank 0 refreshes the index under `dir`
/// (printing what it did), then every rank reads it and registers it for this process's
/// loads (data::use_imagenet_file_list): ranks > 0 list no folder. Other formats, or an empty
/// `dir`: nothing. \throws dist::AgreedFailure on every rank when any rank fails.
void prepare_dataset_index(StageContext& ctx, const ExperimentConfig& config, const std::string& dir);

}  // namespace dualrs::pipeline
