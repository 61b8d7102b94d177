// The estimator objective against independent numpy/scipy float64 values
// (tests/reference/make_estimator_loss_reference.py), plus gradients at saturated logits,
// shape errors, and a w_r that carries no gradient.

#include "dualrs/train/estimator_loss.h"

#include <cmath>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "dualrs/core/error.h"

namespace dualrs::train {
namespace {

using nlohmann::json;

// 1e-9 relative, as promised; the absolute floor only matters for values that are themselves
// below 1e-12 (one saturated example has consistency ~1e-42, where the log-domain form and
// numpy's probability-domain form differ in the last e^-100-sized term).
constexpr double kRelTol = 1e-9;
constexpr double kAbsTol = 1e-12;

json load_reference() {
  const std::string path = std::string(DUALRS_TEST_DATA_DIR) + "/estimator_loss_reference.json";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return json::parse(in);
}

torch::Tensor to_tensor(const json& j) {
  std::vector<double> flat;
  std::vector<std::int64_t> shape;
  // Nested lists of numbers (rectangular), depth 0..3.
  const json* level = &j;
  while (level->is_array()) {
    shape.push_back(static_cast<std::int64_t>(level->size()));
    if (level->empty()) break;
    level = &(*level)[0];
  }
  std::function<void(const json&)> walk = [&](const json& v) {
    if (v.is_array()) {
      for (const auto& e : v) walk(e);
    } else {
      flat.push_back(v.get<double>());
    }
  };
  walk(j);
  return torch::tensor(flat, torch::kDouble).reshape(shape);
}

void expect_close(const torch::Tensor& actual, const json& expected_json, const std::string& what) {
  const auto expected = to_tensor(expected_json);
  ASSERT_EQ(actual.scalar_type(), torch::kDouble) << what;
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  const auto a = actual.detach().contiguous().reshape({-1});
  const auto e = expected.reshape({-1});
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double av = a[i].item<double>();
    const double ev = e[i].item<double>();
    EXPECT_NEAR(av, ev, kRelTol * std::abs(ev) + kAbsTol) << what << " [" << i << "]";
  }
}

RadiusWeight parse_mode(const std::string& mode) {
  if (mode == "none") return RadiusWeight::kNone;
  if (mode == "strong") return RadiusWeight::kStrong;
  if (mode == "weak") return RadiusWeight::kWeak;
  throw std::runtime_error("unknown mode " + mode);
}

TEST(EstimatorLossTest, MatchesNumpyReference) {
  const json ref = load_reference();
  ASSERT_GE(ref.at("cases").size(), 8u);
  for (const auto& c : ref.at("cases")) {
    const auto name = c.at("name").get<std::string>();
    SCOPED_TRACE(name);
    const auto logits = to_tensor(c.at("logits"));
    const auto radii = to_tensor(c.at("radii"));
    const auto w_e = to_tensor(c.at("w_e"));
    ASSERT_EQ(logits.sizes(), (std::vector<std::int64_t>{c.at("B").get<std::int64_t>(), c.at("m").get<std::int64_t>(),
                                                         c.at("S").get<std::int64_t>()}));
    EstimatorLossConfig config;
    config.lambda = c.at("lambda").get<double>();
    config.eta = c.at("eta").get<double>();
    config.radius_weight = parse_mode(c.at("mode").get<std::string>());
    config.radius_scale_c = c.at("c").get<double>();
    const auto& e = c.at("expected");

    const auto labels = soft_labels(radii);
    expect_close(labels, e.at("soft_labels"), name + " soft_labels");
    expect_close(soft_cross_entropy(logits, labels), e.at("ce"), name + " ce");
    expect_close(consistency_loss(logits, config.lambda, config.eta), e.at("consistency"), name + " consistency");
    expect_close(radius_weight(logits, radii, config.radius_weight, config.radius_scale_c), e.at("w_r"), name + " w_r");

    const auto terms = estimator_loss(logits, radii, w_e, config);
    ASSERT_EQ(terms.total.dim(), 0);
    expect_close(terms.total, e.at("total"), name + " total");
    expect_close(terms.ce, e.at("ce"), name + " terms.ce");
    expect_close(terms.consistency, e.at("consistency"), name + " terms.consistency");
    expect_close(terms.w_r, e.at("w_r"), name + " terms.w_r");
  }
}

TEST(EstimatorLossTest, HardLabelsAreOneHotAtTheFirstBestSigma) {
  // Rows: a clear best, a tie (-> the smaller sigma), all zero (-> the first).
  const auto radii = torch::tensor({0.2, 0.9, 0.4, 0.7, 0.1, 0.7, 0.0, 0.0, 0.0}, torch::kDouble).view({3, 3});
  const auto hard = hard_labels(radii);
  EXPECT_TRUE(torch::equal(hard, torch::tensor({0., 1., 0., 1., 0., 0., 1., 0., 0.}, torch::kDouble).view({3, 3})));
  // With hard labels the cross-entropy is -mean_k log softmax(z_k)[best], by hand here.
  const std::vector<double> z = {1.0, 2.0, 0.5, -1.0, 0.0, 3.0};  // one example, m = 2 copies, S = 3
  const auto logits = torch::tensor(z, torch::kDouble).view({1, 2, 3});
  double expected = 0;
  for (int k = 0; k < 2; ++k) {
    const double lse = std::log(std::exp(z[3 * k]) + std::exp(z[3 * k + 1]) + std::exp(z[3 * k + 2]));
    expected += -(z[3 * k + 1] - lse) / 2;  // best sigma: index 1
  }
  const auto one = radii.slice(0, 0, 1);
  EstimatorLossConfig config;
  config.lambda = 0.0;
  config.eta = 0.0;
  config.radius_weight = RadiusWeight::kNone;
  config.hard_labels = true;
  const auto terms = estimator_loss(logits, one, torch::ones({1}, torch::kDouble), config);
  EXPECT_NEAR(terms.ce.item<double>(), expected, 1e-12);
  config.hard_labels = false;  // the soft targets give another loss
  EXPECT_GT(std::abs(estimator_loss(logits, one, torch::ones({1}, torch::kDouble), config).ce.item<double>() - expected),
            1e-3);
  EXPECT_THROW(hard_labels(torch::zeros({3})), DataError);
}

TEST(EstimatorLossTest, LabelRadiusCapMatchesScipy) {
  const json ref = load_reference();
  ASSERT_GE(ref.at("label_radius_cap").size(), 3u);
  for (const auto& c : ref.at("label_radius_cap")) {
    const double expected = c.at("c").get<double>();
    EXPECT_NEAR(label_radius_cap(c.at("max_sigma").get<double>(), c.at("n").get<std::int64_t>(),
                                 c.at("alpha").get<double>()), expected, kRelTol * expected)
        << c.dump();
  }
  EXPECT_NEAR(label_radius_cap(1.0, 100, 0.001), 1.5005, 1e-4);  // docs/method.md §5: σ·1.5005
}

TEST(EstimatorLossTest, LabelRadiusCapRejectsBadArguments) {
  EXPECT_THROW(label_radius_cap(0.0, 100, 0.001), DataError);
  EXPECT_THROW(label_radius_cap(1.0, 0, 0.001), DataError);
  EXPECT_THROW(label_radius_cap(1.0, 100, 0.0), DataError);
  EXPECT_THROW(label_radius_cap(1.0, 100, 1.0), DataError);
  EXPECT_THROW(label_radius_cap(1.0, 5, 0.001), DataError);  // 0.001^(1/5) < 0.5: nothing certifiable
}

// Saturated logits: a naive softmax → log form gives log 0 = −inf and NaN gradients.
void check_saturated(torch::ScalarType dtype, RadiusWeight mode) {
  const auto signs = torch::tensor({1.0, -1.0, -1.0, -1.0, -1.0, 1.0,    // copies disagree
                                    -1.0, 1.0, -1.0, -1.0, 1.0, -1.0,    // copies agree
                                    1.0, 1.0, -1.0, -1.0, -1.0, -1.0},   // a tie, then one-hot
                                   torch::kDouble)
                         .reshape({3, 2, 3});
  auto logits = (1e4 * signs).to(dtype).requires_grad_();
  const auto radii = torch::tensor({0.2, 0.5, 1.0, 0.0, 0.7, 0.0, 0.3, 0.3, 0.3}, dtype).reshape({3, 3});
  const auto w_e = torch::tensor({1.0, 2.0, 0.5}, dtype);
  EstimatorLossConfig config;
  config.radius_weight = mode;
  config.radius_scale_c = 1.5;
  const auto terms = estimator_loss(logits, radii, w_e, config);
  ASSERT_TRUE(torch::isfinite(terms.total).item<bool>());
  EXPECT_TRUE(torch::isfinite(terms.ce).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(terms.consistency).all().item<bool>());
  EXPECT_GT(terms.consistency[0].item<double>(), 1e4);  // disagreeing copies are penalised
  terms.total.backward();
  ASSERT_TRUE(logits.grad().defined());
  EXPECT_TRUE(torch::isfinite(logits.grad()).all().item<bool>()) << logits.grad();
  EXPECT_GT(logits.grad().abs().sum().item<double>(), 0.0);
}

TEST(EstimatorLossTest, SaturatedLogitsGiveFiniteLossAndGradient) {
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    for (const auto mode : {RadiusWeight::kNone, RadiusWeight::kStrong, RadiusWeight::kWeak}) {
      SCOPED_TRACE(std::string(c10::toString(dtype)) + " mode " + std::to_string(static_cast<int>(mode)));
      check_saturated(dtype, mode);
    }
  }
}

TEST(EstimatorLossTest, ConsistencyGradientAtSaturationIsFiniteAlone) {
  auto logits = torch::tensor({50.0, -50.0, -1e4, 1e4, 0.0, 0.0}, torch::kDouble).reshape({1, 2, 3}).requires_grad_();
  consistency_loss(logits, 40.0, 0.5).sum().backward();
  EXPECT_TRUE(torch::isfinite(logits.grad()).all().item<bool>()) << logits.grad();
}

TEST(EstimatorLossTest, RadiusWeightCarriesNoGradient) {
  auto logits = torch::randn({2, 2, 3}, torch::kDouble).requires_grad_();
  auto radii = torch::rand({2, 3}, torch::kDouble).requires_grad_();
  for (const auto mode : {RadiusWeight::kNone, RadiusWeight::kStrong, RadiusWeight::kWeak}) {
    const auto w_r = radius_weight(logits, radii, mode, 1.5);
    EXPECT_FALSE(w_r.requires_grad());
    EXPECT_EQ(w_r.grad_fn(), nullptr);
    EstimatorLossConfig config;
    config.radius_weight = mode;
    const auto terms = estimator_loss(logits, radii, torch::ones({2}, torch::kDouble), config);
    EXPECT_FALSE(terms.w_r.requires_grad());
    EXPECT_TRUE(terms.total.requires_grad());
  }
  // Consistency is the only path from w_r: d total / d logits must equal the value obtained
  // with w_r replaced by a constant.
  EstimatorLossConfig config;
  const auto terms = estimator_loss(logits, radii, torch::ones({2}, torch::kDouble), config);
  const auto w_r_const = terms.w_r.clone();
  const auto manual = (terms.ce + w_r_const * terms.consistency).mean();
  const auto g1 = torch::autograd::grad({terms.total}, {logits}, {}, /*retain_graph=*/true)[0];
  const auto g2 = torch::autograd::grad({manual}, {logits})[0];
  EXPECT_TRUE(torch::allclose(g1, g2, 1e-12, 1e-14));
}

TEST(EstimatorLossTest, ShapeMismatchesThrowDataError) {
  const auto logits = torch::zeros({2, 3, 4}, torch::kDouble);
  const auto radii = torch::zeros({2, 4}, torch::kDouble);
  const auto w_e = torch::ones({2}, torch::kDouble);
  EstimatorLossConfig config;

  EXPECT_THROW(soft_labels(torch::zeros({4}, torch::kDouble)), DataError);
  EXPECT_THROW(soft_cross_entropy(torch::zeros({2, 4}, torch::kDouble), radii), DataError);   // not 3-D
  EXPECT_THROW(soft_cross_entropy(logits, torch::zeros({2, 3}, torch::kDouble)), DataError);  // S differs
  EXPECT_THROW(soft_cross_entropy(logits, torch::zeros({3, 4}, torch::kDouble)), DataError);  // B differs
  EXPECT_THROW(consistency_loss(torch::zeros({2, 0, 4}, torch::kDouble), 1.0, 1.0), DataError);  // m = 0
  EXPECT_THROW(consistency_loss(torch::zeros({2, 4}, torch::kDouble), 1.0, 1.0), DataError);
  EXPECT_THROW(radius_weight(logits, torch::zeros({2, 5}, torch::kDouble), RadiusWeight::kStrong, 1.0), DataError);
  EXPECT_THROW(radius_weight(logits, radii, RadiusWeight::kWeak, 0.0), DataError);  // C must be > 0
  EXPECT_THROW(estimator_loss(logits, radii, torch::ones({3}, torch::kDouble), config), DataError);
  EXPECT_THROW(estimator_loss(logits, radii, torch::ones({2, 1}, torch::kDouble), config), DataError);
  EXPECT_THROW(estimator_loss(logits, torch::zeros({4, 2}, torch::kDouble), w_e, config), DataError);
  EXPECT_NO_THROW(estimator_loss(logits, radii, w_e, config));
}

TEST(EstimatorLossTest, FloatInputsKeepTheirDtype) {
  const auto logits = torch::randn({3, 2, 4});
  const auto radii = torch::rand({3, 4});
  const auto terms = estimator_loss(logits, radii, torch::ones({3}), EstimatorLossConfig{});
  EXPECT_EQ(terms.total.scalar_type(), torch::kFloat);
  EXPECT_EQ(terms.w_r.scalar_type(), torch::kFloat);
  // And agree with the double computation to float precision.
  const auto terms64 = estimator_loss(logits.to(torch::kDouble), radii.to(torch::kDouble),
                                      torch::ones({3}, torch::kDouble), EstimatorLossConfig{});
  EXPECT_NEAR(terms.total.item<double>(), terms64.total.item<double>(), 1e-4 * std::abs(terms64.total.item<double>()));
}

}  // namespace
}  // namespace dualrs::train
