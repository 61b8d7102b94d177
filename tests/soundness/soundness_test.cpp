// Monte Carlo validity of the certificates (docs/method.md §17): base classifiers whose
// smoothed decision and exact robust radius are known in closed form, many independent
// examples, a large α so that failures are observable. For a linear f(x) = [w·x + b > 0] with
// ‖w‖ = 1, under N(0, σ²I) noise p_1 = Φ(m/σ) with margin m = w·x + b, and the exact ℓ2
// distance of x to the smoothed classifier's boundary is |m| — the largest radius any sound
// certificate may claim is σΦ⁻¹(p_A) = |m|. Under grid noise the smoothed classifier is that
// of f∘round, whose p_A is Φ(|m|/σ') with σ'² = σ² + 1/(12·255²) to within the rounding
// error's departure from uniform (below 10⁻⁶ for 255σ ≥ 30); the bound tested is σΦ⁻¹(p_A).
//
// Each test asserts: failures (a certified wrong class, or a radius above the bound) ≤ α·N +
// 3 binomial standard errors; and the median certified/true radius of certified examples
// stays above a floor. Two deliberately broken variants (noise at 0.9σ; selection and
// estimation pooled) must fail the same check: that shows the check can fail.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "dualrs/core/decision.h"
#include "dualrs/core/stats.h"
#include "dualrs/smooth/certify.h"
#include "dualrs/smooth/dual.h"

namespace dualrs::smooth {
namespace {

constexpr std::int64_t kSide = 8;           // images 1 × 8 × 8
constexpr std::int64_t kPixels = kSide * kSide;
constexpr double kAlpha = 0.1;

// f(x) = [w·x + b > 0] as two logits, row by row (so its votes do not depend on the batch).
class LinearModel : public model::BaseModel {
 public:
  LinearModel(std::vector<double> w, double b) : w_(std::move(w)), b_(b) {}
  at::Tensor logits(const at::Tensor& x) override {
    const at::Tensor flat = x.reshape({x.size(0), -1}).to(torch::kFloat64);
    const at::Tensor w = torch::tensor(w_, torch::kFloat64);
    const at::Tensor m = flat.matmul(w) + b_;
    return torch::stack({-m, m}, 1).to(torch::kFloat32);
  }
  std::int64_t num_classes() const override { return 2; }
  std::string describe() const override { return "linear"; }
  void set_training(bool) override {}
  double margin(const at::Tensor& x) const {
    const at::Tensor flat = x.reshape({-1}).to(torch::kFloat64);
    return flat.dot(torch::tensor(w_, torch::kFloat64)).item<double>() + b_;
  }

 private:
  std::vector<double> w_;
  double b_;
};

// A unit vector with a fixed ± pattern of unequal weights.
std::vector<double> direction(int pattern) {
  std::vector<double> w(kPixels);
  double norm = 0;
  for (std::int64_t e = 0; e < kPixels; ++e) {
    w[static_cast<std::size_t>(e)] = ((e * 7 + pattern * 3) % 5 - 2) + 0.5 * ((e + pattern) % 3);
    norm += w[static_cast<std::size_t>(e)] * w[static_cast<std::size_t>(e)];
  }
  for (double& v : w) v /= std::sqrt(norm);
  return w;
}

// Mid-grey plus t·w, rounded to the 8-bit grid (so grid noise applies too).
at::Tensor image_along(const std::vector<double>& w, double t) {
  at::Tensor x = torch::empty({1, kSide, kSide});
  auto a = x.accessor<float, 3>();
  for (std::int64_t e = 0; e < kPixels; ++e) {
    const double v = std::clamp(std::nearbyint(255.0 * (128.0 / 255.0 + t * w[static_cast<std::size_t>(e)])), 0.0, 255.0);
    a[0][e / kSide][e % kSide] = static_cast<float>(v / 255.0);
  }
  return x;
}

double bias_through_grey(const std::vector<double>& w) {
  double s = 0;
  for (const double v : w) s += v * 128.0 / 255.0;
  return -s;
}

double effective_sigma(double sigma, NoiseKind noise) {
  return noise == NoiseKind::kGrid ? std::sqrt(sigma * sigma + 1.0 / (12.0 * 255.0 * 255.0)) : sigma;
}

// The largest radius a sound certificate of class `cls` may claim for margin m at σ (−1: none
// may certify `cls`, it is not the smoothed class).
double true_bound(double m, std::int64_t cls, double sigma, NoiseKind noise) {
  const double signed_margin = cls == 1 ? m : -m;
  if (!(signed_margin > 0)) return -1.0;
  const double p = 0.5 * std::erfc(-signed_margin / effective_sigma(sigma, noise) / std::sqrt(2.0));
  if (p >= 1.0) return INFINITY;
  return sigma * stats::norm_ppf(p);
}

struct Tally {
  std::int64_t examples = 0;
  std::int64_t failures = 0;
  std::vector<double> ratios;  // certified radius / true bound, certified examples
  double forward_passes = 0;
  double limit() const {
    const double n = static_cast<double>(examples);
    return kAlpha * n + 3.0 * std::sqrt(n * kAlpha * (1 - kAlpha));
  }
  double median_ratio() {
    if (ratios.empty()) return 0.0;
    std::sort(ratios.begin(), ratios.end());
    return ratios[ratios.size() / 2];
  }
  void add(bool certified, bool failed, double ratio) {
    ++examples;
    if (failed) ++failures;
    if (certified && !failed && std::isfinite(ratio)) ratios.push_back(ratio);
  }
};

CertifyConfig base_config(NoiseKind noise, Sampling sampling) {
  CertifyConfig c;
  c.sigma = 0.25;
  c.n0 = 50;
  c.n = 800;
  c.alpha = kAlpha;
  c.batch_size = 400;
  c.seed = 11;
  c.noise = noise;
  c.sampling = sampling;
  c.staged.num_looks = 5;
  c.stop_radii = stop_radii({0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, -1.0);
  return c;
}

// Which margins the examples get.
enum class Margins {
  kMixed,  ///< a third at m = 0 (no class may be certified), the rest spread over (0, 2.5σ]
  kZero,   ///< all at m = 0: where selecting ĉ from the estimation counts shows
  kLarge,  ///< [1.5σ, 3σ]: p_A near 1, as for most test digits
};
std::vector<double> offsets(std::int64_t count, double sigma, Margins margins = Margins::kMixed) {
  std::vector<double> t;
  for (std::int64_t k = 0; k < count; ++k) {
    const double spread = static_cast<double>(k % 97 + 1) / 97.0;
    const double sign = k % 2 == 0 ? 1 : -1;
    if (margins == Margins::kZero || (margins == Margins::kMixed && k % 3 == 0)) t.push_back(0.0);
    else if (margins == Margins::kLarge) t.push_back(sign * sigma * (1.5 + 1.5 * spread));
    else t.push_back(sign * sigma * 2.5 * spread);
  }
  return t;
}

enum class Broken { kNone, kNarrowNoise, kPooledCounts };

Tally global_tally(NoiseKind noise, Sampling sampling, Broken broken, std::int64_t count,
                   Margins margins = Margins::kMixed, const std::vector<double>& grid = {}) {
  const std::vector<double> w = direction(1);
  LinearModel model(w, bias_through_grey(w));
  CertifyConfig config = base_config(noise, sampling);
  if (!grid.empty()) config.stop_radii = stop_radii(grid, -1.0);
  const double sigma = config.sigma;
  if (broken == Broken::kNarrowNoise) config.sigma = 0.9 * sigma;  // noise at 0.9σ, radius at σ
  Tally tally;
  const std::vector<double> t = offsets(count, sigma, margins);
  for (std::int64_t k = 0; k < count; ++k) {
    const at::Tensor x = image_along(w, t[static_cast<std::size_t>(k)]);
    const double m = model.margin(x);
    CertifyRecord r = certify_example(model, {k, m > 0 ? 1 : 0, x}, config);
    if (broken == Broken::kNarrowNoise && r.prediction != kAbstain) r.radius /= 0.9;
    if (broken == Broken::kPooledCounts) {
      const Certificate pooled = certify_from_counts(r.counts, r.counts, sigma, kAlpha, config.n);
      r.prediction = pooled.prediction;
      r.radius = pooled.radius;
    }
    tally.forward_passes += static_cast<double>(r.n_used);
    const bool certified = r.prediction != kAbstain;
    const double bound = certified ? true_bound(m, r.prediction, sigma, noise) : 0.0;
    tally.add(certified, certified && (bound < 0 || r.radius > bound), certified && bound > 0 ? r.radius / bound : 0.0);
  }
  tally.forward_passes /= static_cast<double>(count);
  return tally;
}

Tally dual_tally(NoiseKind noise, Sampling sampling, std::int64_t count) {
  const std::vector<double> w = direction(1);
  const std::vector<double> w_e = direction(2);
  LinearModel classifier(w, bias_through_grey(w));
  LinearModel estimator(w_e, bias_through_grey(w_e) + 0.02);
  const CertifyConfig c = base_config(noise, sampling);
  PerSigmaSettings ps{{0.25, 0.5}, c.n0, c.n, c.batch_size, c.seed, noise, sampling, c.staged, c.stop_radii};
  const DualSettings settings{ps, 0.5, kAlpha / 2, kAlpha / 2};
  const ClassifierPool pool{&classifier, &classifier};
  Tally tally;
  const std::vector<double> t = offsets(count, 0.25);
  for (std::int64_t k = 0; k < count; ++k) {
    const at::Tensor x = image_along(w, t[static_cast<std::size_t>(k)] * (k % 4 == 1 ? 2.0 : 1.0));
    const double m = classifier.margin(x);
    const double m_e = estimator.margin(x);
    const CertifyRecord r = dual_certify_example(estimator, pool, {k, m > 0 ? 1 : 0, x}, settings);
    tally.forward_passes += static_cast<double>(r.n_used + r.n_used_estimator);
    const bool certified = r.prediction != kAbstain;
    bool failed = false;
    double ratio = 0.0;
    if (certified) {
      const double sigma = ps.sigma_candidates[static_cast<std::size_t>(r.sigma_index)];
      const double bound_c = true_bound(m, r.prediction, sigma, noise);
      const double bound_e = true_bound(m_e, r.sigma_index, settings.sigma_e, noise);
      const double bound = std::min(bound_c, bound_e);
      failed = bound_c < 0 || bound_e < 0 || r.radius > bound;
      ratio = bound > 0 ? r.radius / bound : 0.0;
    }
    tally.add(certified, failed, ratio);
  }
  tally.forward_passes /= static_cast<double>(count);
  return tally;
}

// The cascade's deciding stage: its class must be the smoothed class at that σ and its radius
// (capped, so at most the stage's) within that σ's bound.
Tally multiscale_tally(NoiseKind noise, Sampling sampling, std::int64_t count) {
  const std::vector<double> w = direction(1);
  LinearModel classifier(w, bias_through_grey(w));
  const CertifyConfig c = base_config(noise, sampling);
  const PerSigmaSettings ps{{0.25, 0.5}, c.n0, c.n, c.batch_size, c.seed, noise, sampling, c.staged, c.stop_radii};
  const ClassifierPool pool{&classifier, &classifier};
  Tally tally;
  const std::vector<double> t = offsets(count, 0.25);
  for (std::int64_t k = 0; k < count; ++k) {
    const at::Tensor x = image_along(w, t[static_cast<std::size_t>(k)] * (k % 4 == 1 ? 2.0 : 1.0));
    const double m = classifier.margin(x);
    const CertifyRecord r = multiscale_certify_example(pool, {k, m > 0 ? 1 : 0, x}, ps, kAlpha, AlphaSplit::kBonferroni);
    tally.forward_passes += static_cast<double>(r.n_used);
    const bool certified = r.prediction != kAbstain;
    double bound = 0.0;
    if (certified) bound = true_bound(m, r.prediction, ps.sigma_candidates[static_cast<std::size_t>(r.sigma_index)], noise);
    tally.add(certified, certified && (bound < 0 || r.radius > bound), certified && bound > 0 ? r.radius / bound : 0.0);
  }
  tally.forward_passes /= static_cast<double>(count);
  return tally;
}

constexpr std::int64_t kExamples = 450;
constexpr double kRadiusFloor = 0.5;  // median certified/true radius of certified examples

void expect_sound(Tally tally, const char* what) {
  EXPECT_LE(static_cast<double>(tally.failures), tally.limit())
      << what << ": " << tally.failures << " of " << tally.examples << " certificates are wrong";
  EXPECT_GT(tally.median_ratio(), kRadiusFloor) << what << ": certified radii are needlessly small";
  std::printf("[soundness] %-28s failures %3lld / %lld (limit %.1f), median radius/true %.3f, forward passes %.0f\n",
              what, static_cast<long long>(tally.failures), static_cast<long long>(tally.examples), tally.limit(),
              tally.median_ratio(), tally.forward_passes);
}

struct Mode {
  NoiseKind noise;
  Sampling sampling;
  const char* name;
};
const Mode kModes[] = {{NoiseKind::kGaussian, Sampling::kFixed, "gaussian, fixed"},
                       {NoiseKind::kGaussian, Sampling::kStaged, "gaussian, staged"},
                       {NoiseKind::kGrid, Sampling::kFixed, "grid, fixed"},
                       {NoiseKind::kGrid, Sampling::kStaged, "grid, staged"}};

TEST(Soundness, GlobalSigmaCertificatesHoldAtLevelAlpha) {
  for (const Mode& mode : kModes) {
    expect_sound(global_tally(mode.noise, mode.sampling, Broken::kNone, kExamples),
                 (std::string("global ") + mode.name).c_str());
  }
}

TEST(Soundness, DualRsCertificatesHoldAtLevelAlpha) {
  for (const Mode& mode : kModes) {
    expect_sound(dual_tally(mode.noise, mode.sampling, kExamples), (std::string("dual rs ") + mode.name).c_str());
  }
}

TEST(Soundness, MultiscaleCertificatesHoldAtLevelAlpha) {
  for (const Mode& mode : kModes) {
    expect_sound(multiscale_tally(mode.noise, mode.sampling, kExamples),
                 (std::string("multiscale ") + mode.name).c_str());
  }
}

// The check above can fail: it does on two broken implementations.
TEST(Soundness, TheCheckFailsOnNoiseAtNineTenthsOfSigma) {
  for (const Mode& mode : kModes) {
    const Tally tally = global_tally(mode.noise, mode.sampling, Broken::kNarrowNoise, kExamples);
    std::printf("[soundness] broken 0.9 sigma, %-16s failures %3lld / %lld (limit %.1f)\n", mode.name,
                static_cast<long long>(tally.failures), static_cast<long long>(tally.examples), tally.limit());
    EXPECT_GT(static_cast<double>(tally.failures), tally.limit()) << mode.name;
  }
}

TEST(Soundness, TheCheckFailsOnCountsPooledAcrossSelectionAndEstimation) {
  for (const Mode& mode : {kModes[0], kModes[2]}) {
    const Tally tally = global_tally(mode.noise, mode.sampling, Broken::kPooledCounts, kExamples, Margins::kZero);
    const Tally sound = global_tally(mode.noise, mode.sampling, Broken::kNone, kExamples, Margins::kZero);
    EXPECT_LE(static_cast<double>(sound.failures), sound.limit()) << mode.name;
    std::printf("[soundness] broken pooled counts, %-16s failures %3lld / %lld (limit %.1f)\n", mode.name,
                static_cast<long long>(tally.failures), static_cast<long long>(tally.examples), tally.limit());
    EXPECT_GT(static_cast<double>(tally.failures), tally.limit()) << mode.name;
  }
}

// Staged sampling stops early where the table's top radius is reached at an early look (here
// a grid of 0 and 0.25 with p_A near 1), and stays sound there.
TEST(Soundness, StagedSamplingStopsAtTheTopRadius) {
  const std::vector<double> grid{0.0, 0.25};
  const Tally fixed = global_tally(NoiseKind::kGaussian, Sampling::kFixed, Broken::kNone, 150, Margins::kLarge, grid);
  const Tally staged = global_tally(NoiseKind::kGaussian, Sampling::kStaged, Broken::kNone, 150, Margins::kLarge, grid);
  std::printf("[soundness] large margins, grid {0, 0.25}: forward passes fixed %.0f, staged %.0f\n",
              fixed.forward_passes, staged.forward_passes);
  EXPECT_LT(staged.forward_passes, 0.5 * fixed.forward_passes);
  EXPECT_LE(static_cast<double>(staged.failures), staged.limit());
}

}  // namespace
}  // namespace dualrs::smooth
