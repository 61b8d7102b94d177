#include "dualrs/core/staged.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "dualrs/core/decision.h"
#include "dualrs/core/error.h"
#include "dualrs/core/stats.h"

namespace dualrs {
inline namespace core {

LookSchedule single_look(std::int64_t n, double alpha) { return {{n}, {alpha}}; }

LookSchedule look_schedule(const StagedConfig& staged, std::int64_t n, double alpha) {
  LookSchedule s;
  if (!staged.looks.empty()) {
    for (std::size_t i = 0; i < staged.looks.size(); ++i) {
      const std::int64_t look = staged.looks[i];
      const std::string at = "/certify/staged/looks/" + std::to_string(i);
      if (look < 1 || look > n) throw ConfigError("", at, "must be in [1, n = " + std::to_string(n) + "], got " + std::to_string(look));
      if (!s.n.empty() && look <= s.n.back()) throw ConfigError("", at, "looks must increase");
      s.n.push_back(look);
    }
    if (s.n.back() < n) s.n.push_back(n);
  } else {
    if (staged.num_looks < 1 || staged.num_looks > n) {
      throw ConfigError("", "/certify/staged/num_looks", "must be in [1, n], got " + std::to_string(staged.num_looks));
    }
    for (std::int64_t j = 0; j < staged.num_looks; ++j) {
      const double scale = std::ldexp(1.0, static_cast<int>(staged.num_looks - 1 - j));
      const auto look = static_cast<std::int64_t>(std::ceil(static_cast<double>(n) / scale));
      if (s.n.empty() || look > s.n.back()) s.n.push_back(std::max<std::int64_t>(look, 1));
    }
  }
  const double share = staged.last_look_alpha_share;
  if (!(share > 0 && share <= 1)) {
    throw ConfigError("", "/certify/staged/last_look_alpha_share", "must be in (0, 1], got " + std::to_string(share));
  }
  const std::size_t looks = s.n.size();
  s.alpha.assign(looks, looks == 1 ? alpha : alpha * (1 - share) / static_cast<double>(looks - 1));
  if (looks > 1) s.alpha.back() = alpha * share;
  if (looks > 1 && share == 1.0) {
    // Nothing left for the earlier looks: they cannot certify, so only the last counts.
    throw ConfigError("", "/certify/staged/last_look_alpha_share", "1 leaves no alpha for the earlier looks; use sampling \"fixed\"");
  }
  return s;
}

StagedThresholds::StagedThresholds(LookSchedule schedule, double sigma, std::vector<double> radii, double alpha_scale,
                                   double futility_beta)
    : schedule_(std::move(schedule)),
      sigma_(sigma),
      alpha_scale_(alpha_scale),
      futility_beta_(futility_beta),
      radii_(std::move(radii)) {
  if (radii_.empty() || radii_.front() != 0.0) DUALRS_THROW(DataError, "staged stops: the radii must start at 0");
  thresholds_.resize(schedule_.size());
  for (std::size_t j = 0; j < schedule_.size(); ++j) {
    const std::int64_t nj = schedule_.n[j];
    std::int64_t lo = 0;  // the search for target t starts at target t−1's threshold (monotone)
    for (std::size_t t = 0; t < radii_.size(); ++t) {
      auto meets = [&](std::int64_t c) {
        const Certificate cert = certificate(j, c);
        return !cert.abstained() && cert.radius >= radii_[t];
      };
      std::int64_t hi = nj + 1;  // least c in [lo, hi) that meets, or hi = nj + 1 for none
      if (!meets(nj)) {
        thresholds_[j].push_back(nj + 1);
        lo = nj + 1;
        continue;
      }
      hi = nj;
      while (lo < hi) {
        const std::int64_t mid = lo + (hi - lo) / 2;
        if (meets(mid)) hi = mid;
        else lo = mid + 1;
      }
      thresholds_[j].push_back(hi);
      lo = hi;
    }
  }
}

Certificate StagedThresholds::certificate(std::size_t look, std::int64_t n_a) const {
  return radius_from_count(n_a, schedule_.n[look], sigma_, schedule_.alpha[look] * alpha_scale_);
}

int StagedThresholds::level(std::size_t look, std::int64_t n_a) const {
  int out = -1;
  for (std::size_t t = 0; t < radii_.size() && n_a >= thresholds_[look][t]; ++t) out = static_cast<int>(t);
  return out;
}

bool StagedThresholds::reachable_after(std::size_t look, std::int64_t n_a, std::size_t target) const {
  const double rate = futility_beta_ > 0 ? stats::clopper_pearson_upper(n_a, schedule_.n[look], futility_beta_) : 1.0;
  for (std::size_t l = look + 1; l < schedule_.size(); ++l) {
    const auto more = static_cast<std::int64_t>(std::ceil(rate * static_cast<double>(schedule_.n[l] - schedule_.n[look])));
    if (n_a + more >= thresholds_[l][target]) return true;
  }
  return false;
}

double StagedThresholds::max_radius() const {
  double best = 0.0;
  for (std::size_t j = 0; j < schedule_.size(); ++j) best = std::max(best, certificate(j, schedule_.n[j]).radius);
  return best;
}

LookOutcome next_look(const StagedThresholds& thresholds, std::size_t look, std::int64_t n_a, double best_radius,
                      double cap) {
  if (look + 1 >= thresholds.schedule().size()) return LookOutcome::kLastLook;
  const std::vector<double>& radii = thresholds.radii();
  const double top = std::min(cap, radii.back());
  if (best_radius >= 0 && best_radius >= top) return LookOutcome::kReachedCap;
  // The next stop radius above what is reached: level −1 (abstaining) aims at certifying (0).
  std::size_t next = 0;
  while (next < radii.size() && best_radius >= 0 && radii[next] <= best_radius) ++next;
  if (next >= radii.size() || radii[next] > cap) return LookOutcome::kReachedCap;
  if (!thresholds.reachable_after(look, n_a, next)) return LookOutcome::kFutile;
  return LookOutcome::kContinue;
}

}  // namespace core
}  // namespace dualrs
