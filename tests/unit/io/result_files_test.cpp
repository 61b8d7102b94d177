#include "dualrs/io/result_files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/hdf5_file.h"
#include "io_test_util.h"

namespace dualrs::io {
namespace {

namespace fs = std::filesystem;
using testing::contains;
using testing::io_error_message;
using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

ResultInfo certify_info() {
  ResultInfo info;
  info.method = "global_sigma_0.25";
  info.kind = "certify";
  info.sigma = 0.25;
  info.n0 = 100;
  info.n = 1000;
  info.alpha = 0.001;
  info.num_classes = 3;
  info.dataset = "mnist";
  info.split = "test";
  return info;
}

ResultInfo predict_info() {
  ResultInfo info = certify_info();
  info.kind = "predict";
  info.n0 = 0;
  return info;
}

Provenance test_provenance(const std::string& schema) {
  Provenance p;
  p.schema = schema;
  p.command = schema == "dualrs.certify" ? "certify" : "predict";
  p.config = {{"certify", {{"sigma", 0.25}, {"n0", 100}, {"n", 1000}, {"alpha", 0.001}}}, {"tags", {"a", "b"}}};
  p.config_sha256 = sha256_hex(p.config.dump());
  p.git_revision = "0123456789ab";
  p.dualrs_version = "0.1.0";
  p.seed = std::numeric_limits<std::uint64_t>::max() - 1;
  p.rng_layout_version = 1;
  p.library_versions = "hdf5 1.10.8; boost 1.74";
  p.world_size = 2;
  p.slurm_job_id = "777";
  p.hostname = "node001";
  p.created_utc = "2026-11-21T12:00:00Z";
  return p;
}

CertifyRecord certified(std::int64_t idx, std::int64_t label, std::int64_t prediction, double radius) {
  CertifyRecord r;
  r.idx = idx;
  r.label = label;
  r.prediction = prediction;
  r.radius = radius;
  r.p_a_lower = prediction == kAbstain ? 0.4 : 0.9 + 0.001 * static_cast<double>(idx);
  r.sigma = 0.25;
  r.n_a = 900 + idx;
  r.time_s = 0.5 * static_cast<double>(idx) + 0.125;
  r.counts_selection = {idx, 100 - idx, 0};
  r.counts = {idx + 1, 999 - idx, 0};
  return r;
}

PredictRecord predicted(std::int64_t idx, std::int64_t label, std::int64_t prediction) {
  PredictRecord r;
  r.idx = idx;
  r.label = label;
  r.prediction = prediction;
  r.p_value = 1e-5 * static_cast<double>(idx + 1);
  r.time_s = 1.5;
  r.counts = {10, 20 + idx, 970 - idx};
  return r;
}

void expect_same(const CertifyRecord& a, const CertifyRecord& b) {
  EXPECT_EQ(a.idx, b.idx);
  EXPECT_EQ(a.label, b.label);
  EXPECT_EQ(a.prediction, b.prediction);
  EXPECT_EQ(a.radius, b.radius);
  EXPECT_EQ(a.p_a_lower, b.p_a_lower);
  EXPECT_EQ(a.sigma, b.sigma);
  EXPECT_EQ(a.n_a, b.n_a);
  EXPECT_EQ(a.time_s, b.time_s);
  EXPECT_EQ(a.counts_selection, b.counts_selection);
  EXPECT_EQ(a.counts, b.counts);
}

class ResultFilesTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::string path_ = dir_.file("certify.h5");
};

TEST_F(ResultFilesTest, CertifySinkRoundTripsSortedByIdx) {
  const std::vector<CertifyRecord> records{certified(7, 2, 2, 0.75), certified(3, 1, kAbstain, 0.0),
                                           certified(5, 0, 1, 1.0 / 3.0)};
  const Provenance p = test_provenance("dualrs.certify");
  {
    Hdf5ResultSink sink(path_, certify_info(), p);
    for (const auto& r : records) sink.write(r);
    sink.finish();
  }
  EXPECT_FALSE(fs::exists(temporary_path(path_)));

  const CertifyResults back = read_certify_results(path_);
  ASSERT_EQ(back.records.size(), 3u);
  expect_same(back.records[0], records[1]);  // idx 3
  expect_same(back.records[1], records[2]);  // idx 5
  expect_same(back.records[2], records[0]);  // idx 7

  const ResultInfo want = certify_info();
  EXPECT_EQ(back.info.method, want.method);
  EXPECT_EQ(back.info.kind, want.kind);
  EXPECT_EQ(back.info.sigma, want.sigma);
  EXPECT_EQ(back.info.n0, want.n0);
  EXPECT_EQ(back.info.n, want.n);
  EXPECT_EQ(back.info.alpha, want.alpha);
  EXPECT_EQ(back.info.num_classes, want.num_classes);
  EXPECT_EQ(back.info.dataset, want.dataset);
  EXPECT_EQ(back.info.split, want.split);

  const nlohmann::json& prov = back.provenance;
  EXPECT_EQ(prov.at("schema"), "dualrs.certify");
  EXPECT_EQ(prov.at("schema_version"), 1);
  EXPECT_EQ(prov.at("command"), p.command);
  EXPECT_EQ(prov.at("config"), p.config);  // parsed back from its JSON text
  EXPECT_EQ(prov.at("config_sha256"), p.config_sha256);
  EXPECT_EQ(prov.at("git_revision"), p.git_revision);
  EXPECT_EQ(prov.at("dualrs_version"), p.dualrs_version);
  EXPECT_EQ(prov.at("seed").get<std::uint64_t>(), p.seed);
  EXPECT_EQ(prov.at("rng_layout_version"), p.rng_layout_version);
  EXPECT_EQ(prov.at("library_versions"), p.library_versions);
  EXPECT_EQ(prov.at("world_size"), p.world_size);
  EXPECT_EQ(prov.at("slurm_job_id"), p.slurm_job_id);
  EXPECT_EQ(prov.at("hostname"), p.hostname);
  EXPECT_EQ(prov.at("created_utc"), p.created_utc);
  EXPECT_EQ(prov.at("finished_utc").get<std::string>().size(), 20u);  // set by finish()
  EXPECT_EQ(prov.at("sigma"), 0.25);
  EXPECT_EQ(prov.at("method"), want.method);

  Hdf5File f(path_, FileMode::kReadOnly);
  EXPECT_EQ(f.read_int64("correct"), (std::vector<std::int64_t>{0, 0, 1}));  // abstain counts as wrong
}

TEST_F(ResultFilesTest, EmptyCertifyFileRoundTrips) {
  {
    Hdf5ResultSink sink(path_, certify_info(), test_provenance("dualrs.certify"));
    sink.finish();
  }
  const CertifyResults back = read_certify_results(path_);
  EXPECT_TRUE(back.records.empty());
  Hdf5File f(path_, FileMode::kReadOnly);
  EXPECT_EQ(f.dims("counts"), (std::vector<std::uint64_t>{0, 3}));
  EXPECT_EQ(f.dims("idx"), std::vector<std::uint64_t>{0});
}

TEST_F(ResultFilesTest, PredictSinkWritesItsLayout) {
  const std::string path = dir_.file("predict.h5");
  {
    Hdf5ResultSink sink(path, predict_info(), test_provenance("dualrs.predict"));
    sink.write(predicted(4, 2, 2));
    sink.write(predicted(1, 0, kAbstain));
    sink.finish();
  }
  Hdf5File f(path, FileMode::kReadOnly);
  EXPECT_EQ(f.attr_string("/", "schema"), "dualrs.predict");
  EXPECT_EQ(f.read_int64("idx"), (std::vector<std::int64_t>{1, 4}));
  EXPECT_EQ(f.read_int64("prediction"), (std::vector<std::int64_t>{kAbstain, 2}));
  EXPECT_EQ(f.read_float64("p_value"), (std::vector<double>{2e-5, 5e-5}));
  EXPECT_EQ(f.read_int64("correct"), (std::vector<std::int64_t>{0, 1}));
  EXPECT_EQ(f.read_int64("counts"), (std::vector<std::int64_t>{10, 21, 969, 10, 24, 966}));
  EXPECT_EQ(f.dims("counts"), (std::vector<std::uint64_t>{2, 3}));
  // A predict file is not a certify file.
  const std::string msg = io_error_message([&] { read_certify_results(path); });
  EXPECT_PRED2(contains, msg, path);
  EXPECT_PRED2(contains, msg, "dualrs.predict");
}

TEST_F(ResultFilesTest, SinkDestroyedWithoutFinishLeavesTheOldFile) {
  {
    Hdf5ResultSink sink(path_, certify_info(), test_provenance("dualrs.certify"));
    sink.write(certified(1, 1, 1, 0.5));
    sink.finish();
  }
  const std::string before = read_bytes(path_);
  {
    Hdf5ResultSink sink(path_, certify_info(), test_provenance("dualrs.certify"));
    sink.write(certified(2, 0, 0, 0.25));
    sink.write(certified(3, 0, 0, 0.25));
  }  // no finish(): e.g. an exception unwound the loop
  EXPECT_EQ(read_bytes(path_), before);
  EXPECT_FALSE(fs::exists(temporary_path(path_)));

  write_bytes(temporary_path(path_), "stale partial file of a crashed run");
  { Hdf5ResultSink sink(path_, certify_info(), test_provenance("dualrs.certify")); }
  EXPECT_EQ(read_bytes(path_), before);
  EXPECT_FALSE(fs::exists(temporary_path(path_)));

  // finish() does replace it.
  {
    Hdf5ResultSink sink(path_, certify_info(), test_provenance("dualrs.certify"));
    sink.write(certified(9, 0, 0, 0.25));
    sink.finish();
  }
  EXPECT_EQ(read_certify_results(path_).records.at(0).idx, 9);
}

TEST_F(ResultFilesTest, FailedFinishLeavesTheOldFile) {
  write_bytes(path_, "previous result");
  {
    Hdf5ResultSink sink(path_, certify_info(), test_provenance("dualrs.certify"));
    sink.write(certified(4, 0, 0, 0.25));
    sink.write(certified(4, 0, 0, 0.25));
    const std::string msg = io_error_message([&] { sink.finish(); });
    EXPECT_PRED2(contains, msg, "duplicate example index 4");
    EXPECT_PRED2(contains, msg, path_);
  }
  EXPECT_EQ(read_bytes(path_), "previous result");
  EXPECT_FALSE(fs::exists(temporary_path(path_)));
}

TEST_F(ResultFilesTest, SinkTakesRecordsOverWithTheSameChecksAndFile) {
  // write(CertifyRecord&&), used by merges: the same file as copies give, the same refusals.
  const std::vector<CertifyRecord> records{certified(7, 2, 2, 0.75), certified(3, 1, kAbstain, 0.0)};
  const std::string copied = dir_.file("copied.h5");
  Provenance p = test_provenance("dualrs.certify");
  {
    Hdf5ResultSink by_copy(copied, certify_info(), p), by_move(path_, certify_info(), p);
    for (const auto& r : records) {
      by_copy.write(r);
      CertifyRecord moved = r;
      by_move.write(std::move(moved));
    }
    CertifyRecord short_counts = certified(1, 0, 0, 0.1);
    short_counts.counts = {1, 2};
    EXPECT_PRED2(contains, io_error_message([&] { by_move.write(std::move(short_counts)); }), "'counts'");
    by_copy.finish();
    by_move.finish();
  }
  const CertifyResults a = read_certify_results(copied), b = read_certify_results(path_);
  ASSERT_EQ(b.records.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) expect_same(b.records[i], a.records[i]);
  expect_same(b.records[0], records[1]);
}

TEST_F(ResultFilesTest, SinkRejectsInconsistentRecords) {
  Hdf5ResultSink sink(path_, certify_info(), test_provenance("dualrs.certify"));
  CertifyRecord short_counts = certified(1, 0, 0, 0.1);
  short_counts.counts = {1, 2};
  EXPECT_PRED2(contains, io_error_message([&] { sink.write(short_counts); }), "'counts'");
  CertifyRecord long_selection = certified(1, 0, 0, 0.1);
  long_selection.counts_selection = {1, 2, 3, 4};
  EXPECT_PRED2(contains, io_error_message([&] { sink.write(long_selection); }), "'counts_selection'");
  EXPECT_PRED2(contains, io_error_message([&] { sink.write(predicted(1, 0, 0)); }), path_);

  EXPECT_PRED2(contains, io_error_message([&] {
                 ResultInfo bad = certify_info();
                 bad.kind = "train";
                 Hdf5ResultSink s(path_, bad, test_provenance("dualrs.certify"));
               }),
               "train");
  EXPECT_PRED2(contains, io_error_message([&] {
                 Hdf5ResultSink s(path_, certify_info(), test_provenance("dualrs.predict"));
               }),
               "dualrs.predict");
}

TEST_F(ResultFilesTest, ReaderRejectsOtherFiles) {
  const std::string missing = dir_.file("missing.h5");
  EXPECT_PRED2(contains, io_error_message([&] { read_certify_results(missing); }), missing);

  const std::string garbage = dir_.file("garbage.h5");
  write_bytes(garbage, "idx\tlabel\tpredict\tradius\tcorrect\ttime\n");
  EXPECT_PRED2(contains, io_error_message([&] { read_certify_results(garbage); }), garbage);

  const std::string plain = dir_.file("plain.h5");
  {
    Hdf5File f(plain, FileMode::kCreateTruncate);
    f.write_int64("idx", {1}, {1});
  }
  const std::string no_schema = io_error_message([&] { read_certify_results(plain); });
  EXPECT_PRED2(contains, no_schema, plain);
  EXPECT_PRED2(contains, no_schema, "schema");

  const std::string future = dir_.file("future.h5");
  {
    Hdf5File f(future, FileMode::kCreateTruncate);
    f.set_attr("/", "schema", std::string("dualrs.certify"));
    f.set_attr("/", "schema_version", std::int64_t{2});
  }
  const std::string version = io_error_message([&] { read_certify_results(future); });
  EXPECT_PRED2(contains, version, future);
  EXPECT_PRED2(contains, version, "schema_version 2");

  // A certify file that lost a dataset: the error names the file and the dataset.
  {
    Hdf5ResultSink sink(path_, certify_info(), test_provenance("dualrs.certify"));
    sink.write(certified(1, 1, 1, 0.5));
    sink.finish();
  }
  const std::string truncated = dir_.file("truncated.h5");
  {
    Hdf5File in(path_, FileMode::kReadOnly);
    Hdf5File out(truncated, FileMode::kCreateTruncate);
    for (const std::string& name : in.attr_names("/")) {
      const std::string type = in.attr_dtype("/", name);
      if (type == "string") out.set_attr("/", name, in.attr_string("/", name));
      else if (type == "float64") out.set_attr("/", name, in.attr_double("/", name));
      else if (type == "uint64") out.set_attr("/", name, in.attr_uint64("/", name));
      else out.set_attr("/", name, in.attr_int64("/", name));
    }
    for (const std::string& name : in.list("/")) {
      if (name == "counts") continue;
      if (in.dtype(name).rfind("float", 0) == 0) out.write_float64(name, in.read_float64(name), in.dims(name));
      else out.write_int64(name, in.read_int64(name), in.dims(name));
    }
  }
  EXPECT_EQ(read_certify_results(path_).records.size(), 1u);
  const std::string lost = io_error_message([&] { read_certify_results(truncated); });
  EXPECT_PRED2(contains, lost, truncated);
  EXPECT_PRED2(contains, lost, "'counts'");
}

TEST_F(ResultFilesTest, TsvCertifyTextIsCohenFormat) {
  const std::string path = dir_.file("certify.tsv");
  {
    TsvResultSink sink(path);
    CertifyRecord certified_one = certified(12, 7, 7, 0.1);
    certified_one.time_s = 1.234567;
    CertifyRecord abstained = certified(3, 2, kAbstain, 0.0);
    abstained.time_s = 0.0;
    sink.write(certified_one);
    sink.write(abstained);
    sink.finish();
  }
  EXPECT_EQ(read_bytes(path),
            "idx\tlabel\tpredict\tradius\tcorrect\ttime\n"
            "3\t2\t-1\t0.0\t0\t0:00:00\n"
            "12\t7\t7\t0.1\t1\t0:00:01.234567\n");
  EXPECT_FALSE(fs::exists(temporary_path(path)));
}

TEST_F(ResultFilesTest, TsvPredictTextIsCohenFormat) {
  const std::string path = dir_.file("predict.tsv");
  {
    TsvResultSink sink(path);
    sink.write(predicted(2, 1, 1));
    sink.write(predicted(0, 5, kAbstain));
    EXPECT_PRED2(contains, io_error_message([&] { sink.write(certified(9, 0, 0, 1.0)); }), path);
    sink.finish();
  }
  EXPECT_EQ(read_bytes(path),
            "idx\tlabel\tpredict\tcorrect\ttime\n"
            "0\t5\t-1\t0\t0:00:01.500000\n"
            "2\t1\t1\t1\t0:00:01.500000\n");
}

TEST_F(ResultFilesTest, TsvSinkDestroyedWithoutFinishLeavesTheOldFile) {
  const std::string path = dir_.file("certify.tsv");
  write_bytes(path, "old\n");
  {
    TsvResultSink sink(path);
    sink.write(certified(1, 1, 1, 1.0));
  }
  EXPECT_EQ(read_bytes(path), "old\n");
  EXPECT_FALSE(fs::exists(temporary_path(path)));
  {
    TsvResultSink sink(path);
    sink.finish();
  }
  EXPECT_EQ(read_bytes(path), "idx\tlabel\tpredict\tradius\tcorrect\ttime\n");
}

TEST(FormatTimedeltaTest, MatchesPythonStrTimedelta) {
  // Expected strings are str(datetime.timedelta(seconds=x)) from CPython 3.11.
  EXPECT_EQ(format_timedelta(0.0), "0:00:00");
  EXPECT_EQ(format_timedelta(1.5), "0:00:01.500000");
  EXPECT_EQ(format_timedelta(3661.000001), "1:01:01.000001");
  EXPECT_EQ(format_timedelta(0.000001), "0:00:00.000001");
  EXPECT_EQ(format_timedelta(1.234567), "0:00:01.234567");
  EXPECT_EQ(format_timedelta(0.0000005), "0:00:00");         // half a microsecond rounds to even
  EXPECT_EQ(format_timedelta(0.0000015), "0:00:00.000002");
  EXPECT_EQ(format_timedelta(36000.0), "10:00:00");
  EXPECT_EQ(format_timedelta(86400.0), "1 day, 0:00:00");
  EXPECT_EQ(format_timedelta(200000.25), "2 days, 7:33:20.250000");
  EXPECT_EQ(format_timedelta(-1.5), "-1 day, 23:59:58.500000");
  EXPECT_THROW(format_timedelta(std::numeric_limits<double>::quiet_NaN()), DataError);
}

}  // namespace
}  // namespace dualrs::io
