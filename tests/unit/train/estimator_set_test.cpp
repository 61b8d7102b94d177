// The estimator's training set from a labels table: rows whose radii are all 0 are dropped,
// the rest keep their order, radii and w_e (docs/method.md §5, §6), against the rows of
// tests/reference/make_label_reference.py -> tests/data/label_reference.json.

#include <gtest/gtest.h>

#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "dualrs/train/estimator_trainer.h"

namespace dualrs::train {
namespace {

struct Table {
  std::vector<double> sigmas;
  std::vector<std::int64_t> idx, best;
  std::vector<double> radii, weight_e;
  std::vector<std::size_t> kept;  // positions the reference keeps
  nlohmann::json rows;
};

Table reference_table() {
  std::ifstream in(std::string(DUALRS_TEST_DATA_DIR) + "/label_reference.json");
  const auto ref = nlohmann::json::parse(in);
  Table t;
  t.sigmas = ref["sigma_candidates"].get<std::vector<double>>();
  t.rows = ref["rows"];
  for (const auto& row : t.rows) {
    t.idx.push_back(row["idx"].get<std::int64_t>());
    t.best.push_back(row["best"].get<std::int64_t>());
    t.weight_e.push_back(row["weight_e"].get<double>());
    for (const auto& r : row["radii"]) t.radii.push_back(r.get<double>());
  }
  t.kept = ref["kept_positions"].get<std::vector<std::size_t>>();
  return t;
}

TEST(EstimatorTrainingSetTest, KeepsRowsWithANonZeroRadiusInOrder) {
  const Table t = reference_table();
  ASSERT_FALSE(t.kept.empty());
  ASSERT_LT(t.kept.size(), t.idx.size());  // the reference drops some rows
  const EstimatorTrainingSet set = estimator_training_set(t.sigmas, t.idx, t.radii, t.best, t.weight_e, true, 1.5);
  const std::size_t s = t.sigmas.size();
  ASSERT_EQ(set.idx.size(), t.kept.size());
  ASSERT_EQ(set.radii.size(), t.kept.size() * s);
  EXPECT_EQ(set.sigma_candidates, t.sigmas);
  EXPECT_EQ(set.radius_cap, 1.5);
  for (std::size_t k = 0; k < t.kept.size(); ++k) {
    const auto& row = t.rows[t.kept[k]];
    EXPECT_EQ(set.idx[k], row["idx"].get<std::int64_t>());
    EXPECT_EQ(set.best[k], row["best"].get<std::int64_t>());
    EXPECT_EQ(set.weight_e[k], row["weight_e"].get<double>());
    for (std::size_t j = 0; j < s; ++j) EXPECT_EQ(set.radii[k * s + j], row["radii"][j].get<double>());
  }
}

TEST(EstimatorTrainingSetTest, WithoutRebalancingEveryWeightIsOne) {
  const Table t = reference_table();
  const EstimatorTrainingSet set = estimator_training_set(t.sigmas, t.idx, t.radii, t.best, t.weight_e, false, 1.0);
  ASSERT_EQ(set.weight_e.size(), t.kept.size());
  for (double w : set.weight_e) EXPECT_EQ(w, 1.0);
}

TEST(EstimatorTrainingSetTest, ColumnsOfDifferentLengthsAreRefused) {
  const Table t = reference_table();
  std::vector<double> short_radii(t.radii.begin(), t.radii.end() - 1);
  EXPECT_THROW(estimator_training_set(t.sigmas, t.idx, short_radii, t.best, t.weight_e, true, 1.0), std::invalid_argument);
  std::vector<std::int64_t> short_best(t.best.begin(), t.best.end() - 1);
  EXPECT_THROW(estimator_training_set(t.sigmas, t.idx, t.radii, short_best, t.weight_e, true, 1.0), std::invalid_argument);
}

}  // namespace
}  // namespace dualrs::train
