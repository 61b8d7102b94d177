// Label and sigma-estimate files round trip; bad files are refused with the path named.

#include "dualrs/io/label_files.h"

#include <gtest/gtest.h>

#include <fstream>

#include "dualrs/core/error.h"
#include "dualrs/io/result_files.h"
#include "io_test_util.h"

namespace dualrs::io {
namespace {

Provenance test_provenance(const std::string& schema) {
  return make_provenance(schema, "label", nlohmann::json{{"label", {{"n", 100}}}}, 5, 1);
}

LabelSet sample_labels() {
  LabelSet l;
  l.sigma_candidates = {0.25, 0.5, 1.0};
  l.n = 100;
  l.alpha = 0.001;
  l.dataset = "mnist";
  l.split = "train";
  l.idx = {3, 8};
  l.label = {1, 7};
  l.radii = {0.1, 0.3, 0.0, 0.0, 0.0, 0.0};
  l.top_count = {90, 99, 40, 30, 35, 50};
  l.best = {1, -1};
  l.max_radius = {0.3, 0.0};
  l.weight_e = {1.0, 0.0};
  return l;
}

TEST(LabelFilesTest, RoundTrip) {
  testing::TempDir dir;
  const LabelSet written = sample_labels();
  write_labels(dir.file("labels.h5"), written, test_provenance("dualrs.labels"));
  const LabelSet read = read_labels(dir.file("labels.h5"));
  EXPECT_EQ(read.sigma_candidates, written.sigma_candidates);
  EXPECT_EQ(read.n, 100);
  EXPECT_EQ(read.alpha, 0.001);
  EXPECT_EQ(read.dataset, "mnist");
  EXPECT_EQ(read.split, "train");
  EXPECT_FALSE(read.routing);
  EXPECT_EQ(read.idx, written.idx);
  EXPECT_EQ(read.radii, written.radii);
  EXPECT_EQ(read.top_count, written.top_count);
  EXPECT_EQ(read.best, written.best);
  EXPECT_EQ(read.weight_e, written.weight_e);
  EXPECT_EQ(read.provenance.value("command", ""), "label");
  EXPECT_FALSE(std::filesystem::exists(dir.file("labels.h5.tmp")));
}

TEST(LabelFilesTest, WrongShapesAreRefusedBeforeWriting) {
  testing::TempDir dir;
  LabelSet bad = sample_labels();
  bad.radii.pop_back();
  EXPECT_THROW(write_labels(dir.file("labels.h5"), bad, test_provenance("dualrs.labels")), IoError);
  EXPECT_FALSE(std::filesystem::exists(dir.file("labels.h5")));
}

TEST(LabelFilesTest, OtherFilesAreRefusedNamingThePath) {
  testing::TempDir dir;
  SigmaEstimates e;
  e.sigma_candidates = {0.25, 0.5};
  e.idx = {1};
  e.label = {0};
  e.sigma_index = {1};
  e.counts = {3, 13};
  write_sigma_estimates(dir.file("est.h5"), e, test_provenance("dualrs.sigma_estimates"));
  try {
    read_labels(dir.file("est.h5"));
    FAIL();
  } catch (const IoError& err) {
    EXPECT_NE(std::string(err.what()).find("est.h5"), std::string::npos) << err.what();
  }
  const SigmaEstimates back = read_sigma_estimates(dir.file("est.h5"));
  EXPECT_EQ(back.sigma_index, e.sigma_index);
  EXPECT_EQ(back.counts, e.counts);
  std::ofstream(dir.file("garbage.h5")) << "not hdf5";
  EXPECT_THROW(read_labels(dir.file("garbage.h5")), IoError);
  EXPECT_THROW(read_sigma_estimates(dir.file("missing.h5")), IoError);
}

TEST(LabelFilesTest, DualResultFilesCarryThePerSigmaColumns) {
  testing::TempDir dir;
  ResultInfo info;
  info.kind = "certify";
  info.method = "dual_rs";
  info.num_classes = 2;
  info.sigma_candidates = {0.25, 1.0};
  info.sigma_e = 1.0;
  info.alpha_e = 0.0005;
  info.alpha_c = 0.0005;
  {
    Hdf5ResultSink sink(dir.file("dual.h5"), info, make_provenance("dualrs.certify", "certify", {}, 0, 1));
    CertifyRecord r;
    r.idx = 4;
    r.label = 1;
    r.prediction = 1;
    r.radius = 0.3;
    r.sigma_index = 1;
    r.r_sigma = 0.3;
    r.r_c = 0.9;
    r.counts_selection = {0, 10};
    r.counts = {1, 99};
    r.estimator_counts_selection = {2, 8};
    r.estimator_counts = {5, 95};
    sink.write(r);
    CertifyRecord bad = r;
    bad.idx = 5;
    bad.estimator_counts = {1, 2, 3};
    EXPECT_THROW(sink.write(bad), IoError);
    sink.finish();
  }
  const CertifyResults back = read_certify_results(dir.file("dual.h5"));
  EXPECT_EQ(back.info.sigma_candidates, info.sigma_candidates);
  EXPECT_EQ(back.info.alpha_e, 0.0005);
  ASSERT_EQ(back.records.size(), 1u);
  EXPECT_EQ(back.records[0].sigma_index, 1);
  EXPECT_EQ(back.records[0].r_c, 0.9);
  EXPECT_EQ(back.records[0].estimator_counts, (Counts{5, 95}));
}

}  // namespace
}  // namespace dualrs::io
