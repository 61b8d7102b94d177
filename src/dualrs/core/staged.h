#pragma once
/// \file
/// Staged sequential CERTIFY: the looks, their α and the integer count thresholds that make
/// every stop decision a comparison (docs/method.md §16). No sampling here.
///
/// Validity: at look j the Clopper–Pearson bound is taken at α_j with Σ_j α_j ≤ α, so with
/// probability ≥ 1 − α every look's bound holds at once (a union bound over the looks), and
/// the best radius over the looks taken is a valid certificate, whichever looks are taken —
/// stopping early only drops looks.

#include <cstdint>
#include <vector>

#include "dualrs/core/config.h"

namespace dualrs {
inline namespace core {

/// Cumulative sample counts n_1 < … < n_L = n and their levels α_1, …, α_L.
struct LookSchedule {
  std::vector<std::int64_t> n;
  std::vector<double> alpha;
  std::size_t size() const { return n.size(); }
};

/// The looks of `staged` for `n` estimation copies at level `alpha`: the explicit looks (n
/// appended when the last is below it), or `num_looks` geometric counts ⌈n / 2^(L−1−j)⌉
/// (duplicates dropped); α_L = share·α and the other looks split (1 − share)·α evenly
/// (one look: α). \throws ConfigError naming /certify/staged/… on a bad schedule.
LookSchedule look_schedule(const StagedConfig& staged, std::int64_t n, double alpha);

/// Fixed CERTIFY as a schedule: one look at n with α.
LookSchedule single_look(std::int64_t n, double alpha);

/// Count thresholds of one schedule at one σ: threshold(j, t) is the least count c with
/// radius(c, n_j, σ, α_j) ≥ radii[t] (t = 0: the least count that certifies, p_a_lower > 0.5),
/// or n_j + 1 when no count reaches it. `alpha_scale` multiplies each α_j before the bound
/// (Multiscale's stage bound is at α/2). radius() is radius_from_count, so a threshold and
/// the reported radius cannot disagree.
class StagedThresholds {
 public:
  /// \param futility_beta see StagedConfig::futility_beta.
  StagedThresholds(LookSchedule schedule, double sigma, std::vector<double> radii, double alpha_scale = 1.0,
                   double futility_beta = 0.0);

  const LookSchedule& schedule() const { return schedule_; }
  const std::vector<double>& radii() const { return radii_; }
  std::int64_t threshold(std::size_t look, std::size_t target) const { return thresholds_[look][target]; }

  /// The highest target index reached by `n_a` votes at `look` (-1: it does not certify).
  int level(std::size_t look, std::int64_t n_a) const;
  /// Whether some later look could reach `target`: with futility_beta 0, if every copy after
  /// `look` voted for ĉ; else if they voted for ĉ at the rate of the Clopper–Pearson upper
  /// bound of n_a / n_look at level futility_beta (rounded up).
  bool reachable_after(std::size_t look, std::int64_t n_a, std::size_t target) const;
  /// The radius of `n_a` votes at `look` (0 when it does not certify) and its p_a_lower.
  Certificate certificate(std::size_t look, std::int64_t n_a) const;
  /// The largest radius any look could give (every copy for ĉ).
  double max_radius() const;

 private:
  LookSchedule schedule_;
  double sigma_;
  double alpha_scale_;
  double futility_beta_;
  std::vector<double> radii_;
  std::vector<std::vector<std::int64_t>> thresholds_;
};

/// What a staged CERTIFY does after a look: go on, or stop and why.
enum class LookOutcome {
  kContinue,
  kLastLook,     ///< every look taken
  kReachedCap,   ///< (a) the best radius reached the largest radius that matters
  kFutile,       ///< (b) no later look can lift the radius to the next stop radius below the cap
};

/// The stop rule of docs/method.md §16 after look `look` with `n_a` cumulative votes for ĉ:
/// `best_radius` is the best over the looks so far (-1 while none certifies) and `cap` the
/// radius beyond which nothing reported changes (the top stop radius; for Dual RS also the
/// other stage's bound). Pure comparisons of counts and radii.
LookOutcome next_look(const StagedThresholds& thresholds, std::size_t look, std::int64_t n_a, double best_radius,
                      double cap);

}  // namespace core
}  // namespace dualrs
