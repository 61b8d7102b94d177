// Shard files: naming, inspection (damaged files are recognised), the scan a resumed stage
// makes, and the merge into the stage's output (data_schemas/shards.md).

#include "dualrs/io/shard_files.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "dualrs/core/dual.h"
#include "dualrs/core/error.h"
#include "dualrs/io/hdf5_file.h"
#include "dualrs/io/label_files.h"
#include "dualrs/io/result_files.h"
#include "io_test_util.h"

namespace dualrs::io {
namespace {

namespace fs = std::filesystem;
using testing::contains;
using testing::io_error_message;
using testing::TempDir;

// The selection of these tests: dataset indices in position order (not sorted).
const std::vector<std::int64_t> kSelection = {40, 7, 23, 5, 91, 12, 66, 3, 18, 54};
constexpr std::int64_t kShardSize = 4;  // shards [0,4), [4,8), [8,10)

Provenance base(const std::string& schema, const std::string& config = "a") {
  return make_provenance(schema, "label", nlohmann::json{{"label", {{"config", config}}}}, 5, 1);
}

ShardMeta meta(const Shard& s) {
  return {s, kShardSize, 3, static_cast<std::int64_t>(kSelection.size()), selection_sha256(kSelection), 0};
}

/// Label rows for positions [begin, end) of kSelection, with values derived from the index.
LabelSet label_rows(std::int64_t begin, std::int64_t end) {
  LabelSet l;
  l.sigma_candidates = {0.25, 0.5};
  l.dataset = "mnist";
  l.split = "train";
  for (std::int64_t p = begin; p < end; ++p) {
    const std::int64_t idx = kSelection[static_cast<std::size_t>(p)];
    l.idx.push_back(idx);
    l.label.push_back(idx % 10);
    const double r0 = idx % 3 == 0 ? 0.0 : 0.01 * static_cast<double>(idx);
    const double r1 = idx % 2 == 0 ? 0.0 : 0.02 * static_cast<double>(idx);
    l.radii.insert(l.radii.end(), {r0, r1});
    l.top_count.insert(l.top_count.end(), {idx, idx + 1});
    l.non_finite.insert(l.non_finite.end(), {idx == 23 ? 4 : 0, 0});
    l.best.push_back(best_sigma_index({r0, r1}));
    l.max_radius.push_back(std::max(r0, r1));
  }
  return l;
}

void write_label_shard(const std::string& out, const Shard& s, const std::string& config = "a") {
  fs::create_directories(shards_folder(out));
  write_labels(shard_path(out, s.index), label_rows(s.begin, s.end), shard_provenance(base("dualrs.labels", config), meta(s)));
}

ShardSpec label_spec(const std::string& config = "a") {
  return {"dualrs.labels", base("dualrs.labels", config).config_sha256, static_cast<std::int64_t>(kSelection.size()),
          selection_sha256(kSelection), make_shards(static_cast<std::int64_t>(kSelection.size()), kShardSize)};
}

TEST(ShardFilesTest, NamesAndTheSelectionHash) {
  EXPECT_EQ(shard_path("out", 12), "out/shards/shard-00012.h5");
  EXPECT_EQ(shard_path("out", 123456), "out/shards/shard-123456.h5");
  // hashlib.sha256(np.sort(np.asarray([0, 1, 2, 4000000000, -1], "<i8")).tobytes()).hexdigest()
  EXPECT_EQ(selection_sha256({0, 1, 2, 4000000000LL, -1}), "0e500fe5daede73c277e28d34eb547d2778b7d426be14d97d19b0f42765567e7");
  EXPECT_EQ(selection_sha256({4000000000LL, -1, 2, 1, 0}), selection_sha256({0, 1, 2, 4000000000LL, -1}));
}

TEST(ShardFilesTest, AShardCarriesItsPlaceAndACompletionMark) {
  TempDir dir;
  const Shard s{1, 4, 8};
  write_label_shard(dir.path(), s);
  const ShardFileInfo info = inspect_shard(shard_path(dir.path(), 1));
  EXPECT_EQ(info.schema, "dualrs.labels");
  EXPECT_EQ(info.meta.shard, s);
  EXPECT_EQ(info.meta.shard_count, 3);
  EXPECT_EQ(info.meta.selection_count, 10);
  EXPECT_EQ(info.provenance.config_sha256, base("dualrs.labels").config_sha256);
  Hdf5File f(shard_path(dir.path(), 1), FileMode::kReadOnly);
  EXPECT_EQ(f.attr_int64("/", "shard_complete"), 1);
  EXPECT_FALSE(f.exists("weight_e"));  // computed when merging
  EXPECT_EQ(f.read_int64("idx"), (std::vector<std::int64_t>{91, 12, 66, 3}));
}

TEST(ShardFilesTest, DamagedShardsAreRecognised) {
  TempDir dir;
  for (std::int64_t i = 0; i < 3; ++i) write_label_shard(dir.path(), make_shards(10, kShardSize)[static_cast<std::size_t>(i)]);
  // Truncated.
  const std::string truncated = shard_path(dir.path(), 0);
  const std::string bytes = testing::read_bytes(truncated);
  testing::write_bytes(truncated, bytes.substr(0, bytes.size() / 2));
  EXPECT_PRED2(contains, io_error_message([&] { inspect_shard(truncated); }), truncated);
  // Renamed to another index.
  fs::rename(shard_path(dir.path(), 2), shard_path(dir.path(), 5));
  EXPECT_PRED2(contains, io_error_message([&] { inspect_shard(shard_path(dir.path(), 5)); }), "renamed");
  // Without the completion mark: a file that was not written to the end.
  {
    LabelSet rows = label_rows(4, 8);
    rows.weight_e.assign(4, 0.0);
    Provenance p = shard_provenance(base("dualrs.labels"), meta({1, 4, 8}));
    p.completion_mark = false;
    write_labels(shard_path(dir.path(), 1), rows, p);
  }
  EXPECT_PRED2(contains, io_error_message([&] { inspect_shard(shard_path(dir.path(), 1)); }), "no completion mark");
}

TEST(ShardFilesTest, AScanKeepsGoodShardsMovesDamagedOnesAsideAndRemovesLeftovers) {
  TempDir dir;
  const std::vector<Shard> shards = make_shards(10, kShardSize);
  write_label_shard(dir.path(), shards[0]);
  write_label_shard(dir.path(), shards[2]);
  const std::string damaged = shard_path(dir.path(), 2);
  const std::string bytes = testing::read_bytes(damaged);
  testing::write_bytes(damaged, bytes.substr(0, 300));
  testing::write_bytes(shard_path(dir.path(), 1) + ".tmp", "partial");
  const ShardScan scan = scan_shards(dir.path(), label_spec());
  EXPECT_EQ(scan.complete, (std::vector<Shard>{shards[0]}));
  EXPECT_EQ(scan.pending, (std::vector<Shard>{shards[1], shards[2]}));
  EXPECT_EQ(scan.examples_complete, 4);
  ASSERT_EQ(scan.moved_aside.size(), 1u);
  EXPECT_PRED2(contains, scan.moved_aside[0], damaged);
  EXPECT_FALSE(fs::exists(damaged));
  EXPECT_EQ(std::distance(fs::directory_iterator(shards_folder(dir.path()) + "/corrupt"), fs::directory_iterator()), 1);
  EXPECT_FALSE(fs::exists(shard_path(dir.path(), 1) + ".tmp"));
  EXPECT_EQ(scan.removed_tmp.size(), 1u);
}

TEST(ShardFilesTest, AScanRefusesShardsOfAnotherRngLayoutAndChangesNothing) {
  TempDir dir;
  write_label_shard(dir.path(), {0, 0, 4});  // drawn with layout version 1
  ShardSpec spec = label_spec();
  spec.rng_layout_version = 2;
  const std::string message = io_error_message([&] { scan_shards(dir.path(), spec); });
  EXPECT_PRED2(contains, message, "RNG layout version 1");
  EXPECT_PRED2(contains, message, "draws layout version 2");
  EXPECT_PRED2(contains, message, shard_path(dir.path(), 0));
  EXPECT_TRUE(fs::exists(shard_path(dir.path(), 0)));
  spec.rng_layout_version = 1;  // the same layout resumes
  EXPECT_EQ(scan_shards(dir.path(), spec).complete.size(), 1u);
}

TEST(ShardFilesTest, AScanRefusesAnotherConfigsShardsAndChangesNothing) {
  TempDir dir;
  write_label_shard(dir.path(), {0, 0, 4}, "b");
  testing::write_bytes(shard_path(dir.path(), 2), "not hdf5");  // damaged, but must stay put
  const std::string message = io_error_message([&] { scan_shards(dir.path(), label_spec("a")); });
  EXPECT_PRED2(contains, message, "holds shards of another config");
  EXPECT_PRED2(contains, message, dir.path());
  EXPECT_PRED2(contains, message, base("dualrs.labels", "a").config_sha256);
  EXPECT_PRED2(contains, message, base("dualrs.labels", "b").config_sha256);
  EXPECT_TRUE(fs::exists(shard_path(dir.path(), 2)));
}

TEST(ShardFilesTest, MergedLabelsAreSortedByIndexWithWeightsOverAllRows) {
  TempDir dir;
  for (const Shard& s : make_shards(10, kShardSize)) write_label_shard(dir.path(), s);
  // io merges and writes; the weights come from the caller (pipeline::merge_derivations).
  MergeDerivations derive;
  derive.labels = [](LabelSet& l) { l.weight_e = rebalancing_weights(l.best, l.num_sigmas()); };
  EXPECT_THROW(merge_shards(dir.path(), base("dualrs.labels").config_sha256), std::invalid_argument);
  EXPECT_FALSE(fs::exists(dir.file("labels.h5")));
  const MergeReport report = merge_shards(dir.path(), base("dualrs.labels").config_sha256, derive);
  EXPECT_EQ(report.schema, "dualrs.labels");
  EXPECT_EQ(report.examples, 10);
  EXPECT_EQ(report.shards, 3);
  EXPECT_EQ(report.non_finite_examples, 1);
  EXPECT_EQ(report.non_finite_copies, 4);
  const LabelSet merged = read_labels(dir.file("labels.h5"));
  const LabelSet all = label_rows(0, 10);
  std::vector<std::int64_t> sorted = kSelection;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(merged.idx, sorted);
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const auto p = static_cast<std::size_t>(std::find(kSelection.begin(), kSelection.end(), sorted[i]) - kSelection.begin());
    EXPECT_EQ(merged.radii[2 * i], all.radii[2 * p]);
    EXPECT_EQ(merged.radii[2 * i + 1], all.radii[2 * p + 1]);
    EXPECT_EQ(merged.best[i], all.best[p]);
    EXPECT_EQ(merged.non_finite[2 * i], all.non_finite[2 * p]);
  }
  EXPECT_EQ(merged.weight_e, rebalancing_weights(merged.best, 2));
  Hdf5File f(dir.file("labels.h5"), FileMode::kReadOnly);
  EXPECT_EQ(f.attr_int64("/", "merged_shards"), 3);
  EXPECT_EQ(f.attr_string("/", "shard_world_sizes"), "1");
  EXPECT_FALSE(f.has_attr("/", "shard_complete"));
}

TEST(ShardFilesTest, MergeRefusesMissingShardsAnotherConfigAndTheWrongRows) {
  TempDir dir;
  const std::vector<Shard> shards = make_shards(10, kShardSize);
  write_label_shard(dir.path(), shards[0]);
  write_label_shard(dir.path(), shards[2]);
  EXPECT_PRED2(contains, io_error_message([&] { merge_shards(dir.path()); }), "1 of 3 shards missing (1)");
  write_label_shard(dir.path(), shards[1], "b");
  EXPECT_PRED2(contains, io_error_message([&] { merge_shards(dir.path()); }), "do not belong together");
  // Same config, another noise layout (a shard resumed by a newer dualrs).
  write_labels(shard_path(dir.path(), 1), label_rows(4, 8),
               shard_provenance(make_provenance("dualrs.labels", "label",
                                                nlohmann::json{{"label", {{"config", "a"}}}}, 5, 2),
                                meta(shards[1])));
  EXPECT_PRED2(contains, io_error_message([&] { merge_shards(dir.path()); }), "RNG layout 2");
  // Right place, wrong rows: the selection hash catches an index that is not the selection's.
  LabelSet rows = label_rows(4, 8);
  rows.idx[0] = 999;
  write_labels(shard_path(dir.path(), 1), rows, shard_provenance(base("dualrs.labels"), meta(shards[1])));
  EXPECT_PRED2(contains, io_error_message([&] { merge_shards(dir.path()); }), "missing or repeated");
  EXPECT_FALSE(fs::exists(dir.file("labels.h5")));
  EXPECT_PRED2(contains, io_error_message([&] { merge_shards(dir.path(), "ffff"); }), "expected ffff");
}

TEST(ShardFilesTest, CertifyShardsMergeIntoTheResultFileAndTheTsv) {
  TempDir dir;
  ResultInfo info;
  info.kind = "certify";
  info.method = "global_sigma_0.5";
  info.sigma = 0.5;
  info.num_classes = 2;
  fs::create_directories(shards_folder(dir.path()));
  for (const Shard& s : make_shards(10, kShardSize)) {
    Hdf5ResultSink sink(shard_path(dir.path(), s.index), info, shard_provenance(base("dualrs.certify"), meta(s)));
    for (std::int64_t p = s.begin; p < s.end; ++p) {
      CertifyRecord r;
      r.idx = kSelection[static_cast<std::size_t>(p)];
      r.label = r.idx % 2;
      r.prediction = r.idx == 66 ? kAbstain : r.label;
      r.radius = r.prediction == kAbstain ? 0.0 : 0.001 * static_cast<double>(r.idx);
      r.non_finite = r.idx == 66 ? 7 : 0;
      r.counts = r.counts_selection = {r.idx, 1};
      sink.write(r);
    }
    sink.finish();
  }
  const MergeReport report = merge_shards(dir.path());
  EXPECT_EQ(report.outputs, (std::vector<std::string>{dir.file("certify.h5"), dir.file("certify.tsv")}));
  EXPECT_EQ(report.non_finite_examples, 1);
  const CertifyResults merged = read_certify_results(dir.file("certify.h5"));
  ASSERT_EQ(merged.records.size(), 10u);
  for (std::size_t i = 0; i < merged.records.size(); ++i) {
    const CertifyRecord& r = merged.records[i];
    if (i > 0) {
      EXPECT_LT(merged.records[i - 1].idx, r.idx);
    }
    EXPECT_EQ(r.counts[0], r.idx);
    EXPECT_EQ(r.non_finite, r.idx == 66 ? 7 : 0);
  }
  EXPECT_EQ(merged.info.method, "global_sigma_0.5");
  const std::string tsv = testing::read_bytes(dir.file("certify.tsv"));
  EXPECT_EQ(tsv.substr(0, tsv.find('\n')), "idx\tlabel\tpredict\tradius\tcorrect\ttime");
  EXPECT_EQ(std::count(tsv.begin(), tsv.end(), '\n'), 11);
  EXPECT_PRED2(contains, tsv, "\n3\t1\t1\t");  // the smallest index comes first
}

}  // namespace
}  // namespace dualrs::io
