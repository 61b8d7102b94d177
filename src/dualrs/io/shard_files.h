#pragma once
/// \file
/// Shard files of the sharded stages (label, estimate-sigma, certify, predict) and their
/// merge (docs/cluster.md §3, §4; layout in data_schemas/shards.md). One HDF5 file per shard,
/// `<out>/shards/shard-00012.h5`, in the layout of the stage's own output file for the
/// shard's rows, plus shard attributes and a completion mark; published atomically, so a
/// shard file exists only when complete. Re-running a stage keeps the complete shards of the
/// same config, recomputes missing and damaged ones, and refuses a folder holding another
/// config's shards; merging checks that every example of the selection appears exactly once.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualrs/core/shards.h"
#include "dualrs/io/label_files.h"
#include "dualrs/io/provenance.h"

namespace dualrs::io {

/// Where a shard sits in its selection.
struct ShardMeta {
  Shard shard;                       ///< index and positions [begin, end) in the selection
  std::int64_t shard_size = 0;       ///< the config's shard_size
  std::int64_t shard_count = 0;      ///< shards of the whole selection
  std::int64_t selection_count = 0;  ///< examples in the selection
  std::string selection_sha256;      ///< selection_sha256() of the selection's dataset indices
  std::int64_t rank = 0;             ///< rank that computed the shard
};

/// The provenance a shard file is written with: `base` plus the shard attributes
/// (`shard_index`, `shard_begin`, `shard_end`, `shard_size`, `shard_count`,
/// `selection_count`, `selection_sha256`, `shard_rank`) and the completion mark.
Provenance shard_provenance(const Provenance& base, const ShardMeta& meta);

/// SHA-256 of the dataset indices, sorted ascending, as little-endian int64 bytes (numpy:
/// `hashlib.sha256(np.sort(np.asarray(idx, "<i8")).tobytes())`): the same for any order of
/// the same examples, so that a merge can check it holds every one exactly once.
std::string selection_sha256(std::vector<std::int64_t> idx);

/// `<out_dir>/shards`
std::string shards_folder(const std::string& out_dir);
/// `<out_dir>/shards/shard-00012.h5` (at least five digits).
std::string shard_path(const std::string& out_dir, std::int64_t index);

/// A shard file that passed inspect_shard.
struct ShardFileInfo {
  std::string path;
  std::string schema;      ///< e.g. "dualrs.labels"
  Provenance provenance;   ///< its provenance attributes
  ShardMeta meta;
};

/// Opens a shard file and checks all of it: the root attributes, the completion mark, that
/// its name matches its `shard_index`, and every dataset read in full (which verifies the
/// fletcher32 checksums). \throws IoError saying what is wrong (truncated, checksum, missing
/// mark, ...).
ShardFileInfo inspect_shard(const std::string& path);

/// What a run of a sharded stage expects in `<out>/shards`.
struct ShardSpec {
  std::string schema;            ///< schema of the stage's files, e.g. "dualrs.certify"
  std::string config_sha256;     ///< of this run's resolved config
  std::int64_t selection_count = 0;
  std::string selection_sha256;
  std::vector<Shard> shards;     ///< the shards this run is responsible for (all, or a subset)
  int rng_layout_version = 0;    ///< the noise layout this run draws (0: not checked)
};

/// Outcome of scan_shards.
struct ShardScan {
  std::vector<Shard> complete;            ///< shards of `spec.shards` already done (valid files)
  std::vector<Shard> pending;             ///< shards of `spec.shards` to compute, in order
  std::int64_t examples_complete = 0;     ///< examples in `complete`
  std::vector<std::string> moved_aside;   ///< one line per damaged shard file moved to shards/corrupt/
  std::vector<std::string> removed_tmp;   ///< leftover temporary files of `spec.shards`, removed
};

/// Run at the start of a sharded stage by rank 0, holding the folder's lock. Checks every
/// shard file in `<out_dir>/shards`: a damaged one (inspect_shard fails) is moved to
/// `shards/corrupt/` and reported, so that it is recomputed and never merged; a leftover
/// `.tmp` of one of `spec.shards` is removed.
/// \throws IoError when a shard file belongs to another config or selection, naming the
/// folder, the file and both hashes, or was drawn with another RNG layout version (an older
/// dualrs: resuming would mix two noise layouts in one result); nothing is changed then.
ShardScan scan_shards(const std::string& out_dir, const ShardSpec& spec);

/// What merge_shards found and wrote.
struct MergeReport {
  std::string schema;
  std::vector<std::string> outputs;          ///< files written, e.g. certify.h5 and certify.tsv
  std::int64_t examples = 0;
  std::int64_t shards = 0;
  std::vector<std::int64_t> world_sizes;     ///< distinct world sizes that wrote the shards
  std::int64_t non_finite_examples = 0;      ///< examples with NaN/Inf logits in some copy
  std::int64_t non_finite_copies = 0;        ///< such copies in total
  /// The outputs already held the merge of exactly these shards and were left as they were.
  bool up_to_date = false;
};

/// Columns of a merged output that depend on every row: io only reads, merges and writes
/// files, so the layer that owns the method fills them in.
struct MergeDerivations {
  /// Labels: fills `weight_e` of the merged rows, sorted by index (docs/method.md §5).
  /// Required to merge labels shards.
  std::function<void(LabelSet&)> labels;
};

/// Merges the shards in `<dir>/shards` into the stage's output in `<dir>`: `labels.h5`,
/// `sigma_estimates.h5`, `certify.h5` + `certify.tsv` or `predict.h5` + `predict.tsv`, by
/// their schema; rows sorted by example index; provenance carried through from the shards
/// (`world_size` = the largest world that wrote a shard; merge attributes `merged_shards`,
/// `shard_size`, `shard_world_sizes`, `merged_shards_sha256`). Shard files are only read.
/// Outputs that already hold the merge of the same shard files (by `merged_shards_sha256`,
/// with every dataset intact and every output present) are not rewritten: a re-run of a
/// finished stage writes nothing here (`MergeReport::up_to_date`).
/// \param expected_config_sha256 when non-empty, the shards must have this config hash.
/// \param derive the derived columns (labels' weights); merging labels without it throws
/// std::invalid_argument.
/// \throws IoError when there are no shard files, one is damaged, they disagree on schema,
/// config or selection, a shard is missing (listed), or the rows do not give every index of
/// the selection exactly once.
MergeReport merge_shards(const std::string& dir, const std::string& expected_config_sha256 = "",
                         const MergeDerivations& derive = {});

}  // namespace dualrs::io
