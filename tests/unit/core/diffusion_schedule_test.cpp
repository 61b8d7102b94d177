// Diffusion schedules and t* against numpy float64 (tests/reference/make_diffusion_reference.py
// -> tests/data/diffusion_reference.json): cosine T = 4000 (CIFAR-10), linear T = 1000
// (ImageNet) and two more, σ ∈ {0.12, 0.25, 0.5, 1.0}.

#include "dualrs/core/diffusion_schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "dualrs/core/error.h"

namespace dualrs {
namespace {

const nlohmann::json& reference() {
  static const nlohmann::json doc = [] {
    std::ifstream in(std::string(DUALRS_TEST_DATA_DIR) + "/diffusion_reference.json");
    return nlohmann::json::parse(in);
  }();
  return doc;
}

void expect_rel(double actual, double expected, double rel, const std::string& what) {
  EXPECT_LE(std::abs(actual - expected), rel * std::abs(expected)) << what << ": got " << actual << " want " << expected;
}

TEST(DiffusionScheduleTest, BetasAndAlphaBarMatchNumpy) {
  ASSERT_EQ(reference()["schedules"].size(), 4u);
  for (const auto& s : reference()["schedules"]) {
    const auto schedule = make_schedule(parse_schedule_kind(s["kind"]), s["steps"]);
    const std::string name = s["kind"].get<std::string>() + " T=" + s["steps"].dump();
    ASSERT_EQ(static_cast<std::int64_t>(schedule.alpha_bar.size()), s["steps"].get<std::int64_t>());
    for (const auto& [t, value] : s["alpha_bar_samples"].items()) {
      expect_rel(schedule.alpha_bar[std::stoul(t)], value.get<double>(), 1e-12, name + " alpha_bar[" + t + "]");
    }
    for (const auto& [t, value] : s["betas_samples"].items()) {
      expect_rel(schedule.betas[std::stoul(t)], value.get<double>(), 1e-12, name + " beta[" + t + "]");
    }
  }
}

TEST(DiffusionScheduleTest, TStarAndCoefficientsMatchNumpy) {
  for (const auto& s : reference()["schedules"]) {
    const auto schedule = make_schedule(parse_schedule_kind(s["kind"]), s["steps"]);
    for (const auto& ref : s["steps_for_sigma"]) {
      const double sigma = ref["sigma"];
      const std::string what = s["kind"].get<std::string>() + " T=" + s["steps"].dump() + " sigma=" + ref["sigma"].dump();
      const DenoiseStep step = denoise_step(schedule, sigma);
      EXPECT_EQ(step.t, ref["t"].get<std::int64_t>()) << what;
      expect_rel(step.network_timestep, ref["network_timestep"], 1e-14, what + " network timestep");
      expect_rel(step.sqrt_alpha_bar, ref["sqrt_alpha_bar"], 1e-12, what + " sqrt_alpha_bar");
      expect_rel(step.sqrt_one_minus_alpha_bar, ref["sqrt_one_minus_alpha_bar"], 1e-12, what + " sqrt(1-abar)");
      expect_rel(step.effective_sigma, ref["effective_sigma"], 1e-12, what + " effective sigma");
      // The defining property, on our own schedule: t* is the first crossing of 2σ.
      EXPECT_GE(schedule.noise_ratio(step.t), 2 * sigma) << what;
      if (step.t > 0) {
        EXPECT_LT(schedule.noise_ratio(step.t - 1), 2 * sigma) << what;
      }
      EXPECT_GE(step.effective_sigma, sigma) << what;
    }
  }
}

TEST(DiffusionScheduleTest, PapersTimesteps) {
  // Carlini et al.'s CIFAR-10 model: σ = 0.25 → t* = 1158 of 4000, network timestep 289.5.
  const auto cosine = make_schedule(ScheduleKind::kCosine, 4000);
  EXPECT_EQ(denoise_step(cosine, 0.25).t, 1158);
  EXPECT_DOUBLE_EQ(denoise_step(cosine, 0.25).network_timestep, 289.5);
  // Without rescaling the network receives t itself.
  const auto plain = make_schedule(ScheduleKind::kCosine, 4000, /*rescale_timesteps=*/false);
  EXPECT_DOUBLE_EQ(denoise_step(plain, 0.25).network_timestep, 1158.0);
  // T = 1000: rescaling is the identity.
  const auto linear = make_schedule(ScheduleKind::kLinear, 1000);
  EXPECT_DOUBLE_EQ(denoise_step(linear, 0.5).network_timestep, static_cast<double>(denoise_step(linear, 0.5).t));
}

TEST(DiffusionScheduleTest, SigmaOutsideTheScheduleIsAConfigError) {
  for (const auto& s : reference()["schedules"]) {
    const auto schedule = make_schedule(parse_schedule_kind(s["kind"]), s["steps"]);
    try {
      denoise_step(schedule, s["out_of_range_sigma"].get<double>(), "/certify/sigma");
      FAIL() << "no error for sigma beyond the schedule";
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.issues().front().pointer, "/certify/sigma");
      EXPECT_NE(std::string(e.what()).find("outside"), std::string::npos) << e.what();
    }
  }
  const auto schedule = make_schedule(ScheduleKind::kLinear, 1000);
  for (double bad : {0.0, -0.25, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    EXPECT_THROW(denoise_step(schedule, bad), ConfigError) << bad;
  }
}

TEST(DiffusionScheduleTest, BadSchedulesAreConfigErrors) {
  EXPECT_THROW(parse_schedule_kind("quadratic"), ConfigError);
  EXPECT_THROW(make_schedule(ScheduleKind::kCosine, 0), ConfigError);
  EXPECT_THROW(make_schedule(ScheduleKind::kLinear, 20), ConfigError);  // β_end = 1
  EXPECT_NO_THROW(make_schedule(ScheduleKind::kLinear, 21));
}

}  // namespace
}  // namespace dualrs
