#include "dualrs/smooth/dual.h"

#include <chrono>
#include <cmath>
#include <functional>
#include <numeric>
#include <optional>

#include "dualrs/core/error.h"
#include "dualrs/smooth/sample_counts.h"
#include "dualrs/smooth/sample_plan.h"

namespace dualrs::smooth {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void check_pool(const ClassifierPool& classifiers, const PerSigmaSettings& settings) {
  if (classifiers.size() != settings.sigma_candidates.size()) {
    throw ConfigError("", "/dual/experts",
                      "need one classifier per sigma: " + std::to_string(settings.sigma_candidates.size()) +
                          " sigma_candidates but " + std::to_string(classifiers.size()) + " classifiers");
  }
  for (auto* c : classifiers) DUALRS_CHECK(c != nullptr, ModelError, "missing classifier in the pool");
}

void check_estimator(model::BaseModel& estimator, std::size_t num_sigmas) {
  if (estimator.num_classes() != static_cast<std::int64_t>(num_sigmas)) {
    DUALRS_THROW(ModelError, "estimator ", estimator.describe(), " has ", estimator.num_classes(),
                 " outputs but |sigma_candidates| = ", num_sigmas);
  }
}

Counts zeros(std::int64_t k) { return Counts(static_cast<std::size_t>(k), 0); }

}  // namespace

LabelRow label_example(const ClassifierPool& classifiers, const Example& example, const PerSigmaSettings& settings,
                       double alpha) {
  return label_examples(classifiers, {example}, settings, alpha).front();
}

std::vector<LabelRow> label_examples(const ClassifierPool& classifiers, const std::vector<Example>& examples,
                                     const PerSigmaSettings& settings, double alpha) {
  check_pool(classifiers, settings);
  const SamplePlan plan = label_plan(settings);
  std::vector<LabelRow> rows(examples.size());
  for (const SampleStep& step : plan.steps) {  // σ_i of Σ in increasing order, classifier i
    const double sigma = step.sigma;
    const SampleDraw& draw = step.draws.front();
    std::vector<GroupedRequest> requests;
    requests.reserve(examples.size());
    for (const Example& ex : examples) {
      requests.push_back({ex.image, {ex.idx, step.sigma_index, sigma, 0, draw.count, plan.batch_size}});
    }
    const std::vector<SampleCounts> counts = sample_counts_grouped(
        *classifiers[step.sigma_index], requests, NoiseSource(plan.seed, draw.stage, plan.noise), plan.batch_size);
    for (std::size_t e = 0; e < examples.size(); ++e) {
      const SampleCounts& c = counts[e];
      LabelRow& row = rows[e];
      row.top_count.push_back(c.votes[static_cast<std::size_t>(argmax_lowest(c.votes))]);
      row.non_finite.push_back(c.non_finite);
      // A copy with non-finite logits makes the radius at this σ 0 (it abstains); grid-noise
      // rejects count as trials (n = N).
      row.radii.push_back(c.non_finite > 0 ? 0.0 : label_radius(c.votes, examples[e].label, sigma, alpha, settings.n));
    }
  }
  return rows;
}

SigmaVote estimate_sigma_example(model::BaseModel& estimator, const Example& example, double sigma_e, std::int64_t n,
                                 std::int64_t batch_size, std::uint64_t seed, std::int64_t num_sigmas, NoiseKind noise) {
  return estimate_sigma_examples(estimator, {example}, sigma_e, n, batch_size, seed, num_sigmas, noise).front();
}

std::vector<SigmaVote> estimate_sigma_examples(model::BaseModel& estimator, const std::vector<Example>& examples,
                                               double sigma_e, std::int64_t n, std::int64_t batch_size, std::uint64_t seed,
                                               std::int64_t num_sigmas, NoiseKind noise) {
  check_estimator(estimator, static_cast<std::size_t>(num_sigmas));
  const SamplePlan plan = estimate_sigma_plan(sigma_e, n, batch_size, seed, num_sigmas, noise);
  const SampleStep& step = plan.steps.front();
  const SampleDraw& draw = step.draws.front();
  std::vector<GroupedRequest> requests;
  requests.reserve(examples.size());
  for (const Example& ex : examples) {
    requests.push_back({ex.image, {ex.idx, step.sigma_index, step.sigma, 0, draw.count, plan.batch_size}});
  }
  const std::vector<SampleCounts> counts =
      sample_counts_grouped(estimator, requests, NoiseSource(plan.seed, draw.stage, plan.noise), plan.batch_size);
  std::vector<SigmaVote> votes(examples.size());
  for (std::size_t e = 0; e < examples.size(); ++e) {
    votes[e].votes = counts[e].votes;
    votes[e].non_finite = counts[e].non_finite;
    votes[e].sigma_index = argmax_lowest(votes[e].votes);
  }
  return votes;
}

namespace {
// The Dual RS fields of `record` from the two stages' certificates (DualRS §4).
CertifyRecord finish_dual(CertifyRecord record, const Certificate& e_cert, const Certificate& c_cert,
                          std::chrono::steady_clock::time_point start) {
  const DualCertificate dual = combine_dual(e_cert, c_cert);
  record.sigma_index = dual.sigma_index;
  record.r_sigma = dual.r_sigma;
  record.r_c = dual.r_c;
  record.prediction = dual.prediction;
  record.radius = dual.radius;
  record.time_s = seconds_since(start);
  return record;
}

// The largest R_c the classifier stage could give at σ_i (every copy for ĉ): past it, a larger
// R_σ changes nothing (final radius = min(R_σ, R_c)).
double max_classifier_radius(const DualSettings& settings, double sigma) {
  const PerSigmaSettings& ps = settings.per_sigma;
  return shared_thresholds(look_schedule(ps.staged, ps.n, settings.alpha_c), sigma, ps.stop_radii, 1.0,
                           ps.staged.futility_beta)
      .max_radius();
}

CertifyRecord dual_certify_staged(model::BaseModel& estimator, const ClassifierPool& classifiers, const Example& example,
                                  const DualSettings& settings) {
  const auto start = std::chrono::steady_clock::now();
  const PerSigmaSettings& ps = settings.per_sigma;
  const SamplePlan plan = dual_certify_plan(settings);
  // Stage 1, the estimator at σ_e: it may stop once R_σ reaches the largest R_c its choice
  // could give (stop (c) of docs/method.md §16).
  const StagedCertificate e = staged_certify_step(estimator, example, plan, plan.steps[0], ps.n0, ps.n, ps.staged,
                                                  ps.stop_radii, settings.alpha_e, [&](std::int64_t c_hat) {
                                            return max_classifier_radius(settings, ps.sigma_candidates[static_cast<std::size_t>(c_hat)]);
                                          });
  Certificate e_cert = e.cert;
  CertifyRecord record;
  record.idx = example.idx;
  record.label = example.label;
  record.non_finite = e.selection.non_finite + e.estimation.non_finite;
  if (record.non_finite > 0) e_cert = abstain_non_finite(e_cert);
  record.estimator_counts_selection = e.selection.votes;
  record.estimator_counts = e.estimation.votes;
  record.n_used_estimator = e.copies;
  const std::int64_t k = classifiers.front()->num_classes();
  record.counts_selection = zeros(k);
  record.counts = zeros(k);
  Certificate c_cert;
  if (!e_cert.abstained()) {
    // Stage 2, the classifier at the chosen σ: it may stop once R_c ≥ R_σ.
    const auto i = static_cast<std::size_t>(e_cert.prediction);
    const double sigma = ps.sigma_candidates[i];
    const double r_sigma = e_cert.radius;
    const StagedCertificate c =
        staged_certify_step(*classifiers[i], example, plan, plan.steps[1].at(static_cast<std::uint32_t>(i), sigma), ps.n0,
                            ps.n, ps.staged, ps.stop_radii, settings.alpha_c, [&](std::int64_t) { return r_sigma; });
    c_cert = c.cert;
    const std::int64_t c_non_finite = c.selection.non_finite + c.estimation.non_finite;
    if (c_non_finite > 0) c_cert = abstain_non_finite(c_cert);
    record.non_finite += c_non_finite;
    record.counts_selection = c.selection.votes;
    record.counts = c.estimation.votes;
    record.sigma = sigma;
    record.n_a = c_cert.n_a;
    record.p_a_lower = c_cert.p_a_lower;
    record.n_used = c.copies;
  }
  return finish_dual(std::move(record), e_cert, c_cert, start);
}
}  // namespace

CertifyRecord dual_certify_example(model::BaseModel& estimator, const ClassifierPool& classifiers,
                                   const Example& example, const DualSettings& settings) {
  if (settings.per_sigma.sampling == Sampling::kStaged) {
    check_pool(classifiers, settings.per_sigma);
    check_estimator(estimator, settings.per_sigma.sigma_candidates.size());
    return dual_certify_staged(estimator, classifiers, example, settings);
  }
  const auto start = std::chrono::steady_clock::now();
  const PerSigmaSettings& ps = settings.per_sigma;
  check_pool(classifiers, ps);
  check_estimator(estimator, ps.sigma_candidates.size());
  const SamplePlan plan = dual_certify_plan(settings);
  // Stage 1: the smoothed estimator certifies its σ choice at σ_e.
  const std::vector<SampleCounts> e = draw_step(estimator, example.image, plan, plan.steps[0], example.idx);
  const SampleCounts& e_sel = e[0];
  const SampleCounts& e_est = e[1];
  Certificate e_cert = certify_from_counts(e_sel.votes, e_est.votes, settings.sigma_e, settings.alpha_e, ps.n);

  CertifyRecord record;
  record.idx = example.idx;
  record.label = example.label;
  record.non_finite = e_sel.non_finite + e_est.non_finite;
  if (record.non_finite > 0) e_cert = abstain_non_finite(e_cert);
  record.estimator_counts_selection = e_sel.votes;
  record.estimator_counts = e_est.votes;
  record.n_used_estimator = ps.n0 + ps.n;
  const std::int64_t k = classifiers.front()->num_classes();
  record.counts_selection = zeros(k);
  record.counts = zeros(k);
  Certificate c_cert;  // abstained unless stage 2 runs
  if (!e_cert.abstained()) {
    // Stage 2 (StepCondition::kUnlessEstimatorAbstains): the classifier (or the routed
    // expert) at the chosen σ.
    const auto i = static_cast<std::size_t>(e_cert.prediction);
    const double sigma = ps.sigma_candidates[i];
    const std::vector<SampleCounts> c = draw_step(*classifiers[i], example.image, plan,
                                                  plan.steps[1].at(static_cast<std::uint32_t>(i), sigma), example.idx);
    const SampleCounts& c_sel = c[0];
    const SampleCounts& c_est = c[1];
    c_cert = certify_from_counts(c_sel.votes, c_est.votes, sigma, settings.alpha_c, ps.n);
    const std::int64_t c_non_finite = c_sel.non_finite + c_est.non_finite;
    if (c_non_finite > 0) c_cert = abstain_non_finite(c_cert);
    record.non_finite += c_non_finite;
    record.counts_selection = c_sel.votes;
    record.counts = c_est.votes;
    record.sigma = sigma;
    record.n_a = c_cert.n_a;
    record.p_a_lower = c_cert.p_a_lower;
    record.n_used = ps.n0 + ps.n;
  }
  return finish_dual(std::move(record), e_cert, c_cert, start);
}

PredictRecord dual_predict_example(model::BaseModel& estimator, const ClassifierPool& classifiers,
                                   const Example& example, const DualSettings& settings) {
  const auto start = std::chrono::steady_clock::now();
  const PerSigmaSettings& ps = settings.per_sigma;
  check_pool(classifiers, ps);
  check_estimator(estimator, ps.sigma_candidates.size());
  const SamplePlan plan = dual_predict_plan(settings);
  const SampleCounts e = draw_step(estimator, example.image, plan, plan.steps[0], example.idx).front();
  const Prediction e_pred = predict_unless_non_finite(e.votes, e.non_finite, settings.alpha_e);
  PredictRecord record;
  record.idx = example.idx;
  record.label = example.label;
  record.counts = zeros(classifiers.front()->num_classes());
  record.p_value = e_pred.p_value;
  record.non_finite = e.non_finite;
  if (!e_pred.abstained()) {
    // Skipped when the estimator abstains (StepCondition::kUnlessEstimatorAbstains).
    const auto i = static_cast<std::size_t>(e_pred.prediction);
    const SampleCounts c = draw_step(*classifiers[i], example.image, plan,
                                     plan.steps[1].at(static_cast<std::uint32_t>(i), ps.sigma_candidates[i]), example.idx)
                               .front();
    const Prediction c_pred = predict_unless_non_finite(c.votes, c.non_finite, settings.alpha_c);
    record.non_finite += c.non_finite;
    record.sigma_index = e_pred.prediction;
    record.prediction = c_pred.prediction;
    record.p_value = c_pred.p_value;
    record.counts = c.votes;
  }
  record.time_s = seconds_since(start);
  return record;
}

namespace {
// One cascade stage with sampling "staged" (docs/method.md §16): the estimation copies in
// looks at α_stage spread by the schedule; `cap` is the cap of the stages before.
struct CascadeStage {
  MultiscaleStage stage;
  SampleCounts selection;
  SampleCounts estimation;
};
CascadeStage staged_cascade_stage(model::BaseModel& model, const Example& example, const SamplePlan& plan,
                                  const SampleStep& step, const PerSigmaSettings& ps, double alpha_stage, double cap) {
  CascadeStage out;
  NoiseRequest request{example.idx, step.sigma_index, step.sigma, 0, ps.n0, plan.batch_size};
  out.selection = sample_counts(model, example.image, NoiseSource(plan.seed, step.draws[0].stage, plan.noise), request);
  const NoiseSource estimation(plan.seed, step.draws[1].stage, plan.noise);
  const LookSchedule schedule = look_schedule(ps.staged, ps.n, alpha_stage);
  // The stage's lower bound is at α/2 (multiscale_stage), so the thresholds are too.
  const StagedThresholds& thresholds =
      shared_thresholds(schedule, step.sigma, ps.stop_radii, 0.5, ps.staged.futility_beta);
  const std::int64_t c_hat = argmax_lowest(out.selection.votes);
  out.estimation.votes.assign(out.selection.votes.size(), 0);
  std::optional<MultiscaleStage> certified;
  std::int64_t drawn = 0;
  for (std::size_t j = 0; j < schedule.size(); ++j) {
    request.first_sample = drawn;
    request.count = schedule.n[j] - drawn;
    add_counts(out.estimation, sample_counts(model, example.image, estimation, request));
    drawn = schedule.n[j];
    if (out.selection.non_finite + out.estimation.non_finite > 0) return out;  // the caller abstains
    const MultiscaleStage look = multiscale_stage(out.selection.votes, out.estimation.votes, step.sigma,
                                                  schedule.alpha[j], schedule.n[j]);
    if (look.decision == StageDecision::kCertify && (!certified || look.radius > certified->radius)) certified = look;
    if (!certified) {
      out.stage = look;
      if (look.decision == StageDecision::kBelowHalf) return out;  // go on to the next smaller σ
      continue;                                                   // undecided: look again
    }
    out.stage = *certified;
    const std::int64_t n_a = out.estimation.votes[static_cast<std::size_t>(c_hat)];
    if (next_look(thresholds, j, n_a, certified->radius, cap) != LookOutcome::kContinue) return out;
  }
  return out;
}
}  // namespace

CertifyRecord multiscale_certify_example(const ClassifierPool& classifiers, const Example& example,
                                         const PerSigmaSettings& settings, double alpha, AlphaSplit split) {
  const auto start = std::chrono::steady_clock::now();
  check_pool(classifiers, settings);
  const auto num = static_cast<std::int64_t>(settings.sigma_candidates.size());
  const SamplePlan plan = multiscale_certify_plan(settings);
  const bool staged = settings.sampling == Sampling::kStaged;
  std::vector<MultiscaleStage> stages;
  std::vector<double> visited;
  CertifyRecord record;
  record.idx = example.idx;
  record.label = example.label;
  double cap = INFINITY;  // the radius cap of the below-half stages so far
  // The plan's steps run largest σ first; the cascade stops at the first that certifies or is
  // undecided (StepCondition::kUntilCertifiedOrUndecided).
  for (std::int64_t step = 0; step < num; ++step) {
    const SampleStep& planned = plan.steps[static_cast<std::size_t>(step)];
    const double sigma = planned.sigma;
    model::BaseModel& model = *classifiers[planned.sigma_index];
    const double alpha_stage = multiscale_stage_alpha(alpha, step, num, split);
    CascadeStage run;
    if (staged) {
      run = staged_cascade_stage(model, example, plan, planned, settings, alpha_stage, cap);
    } else {
      const std::vector<SampleCounts> votes = draw_step(model, example.image, plan, planned, example.idx);
      run.selection = votes[0];
      run.estimation = votes[1];
      if (run.selection.non_finite + run.estimation.non_finite == 0) {
        run.stage = multiscale_stage(run.selection.votes, run.estimation.votes, sigma, alpha_stage, settings.n);
      }
    }
    const SampleCounts& sel = run.selection;
    const SampleCounts& est = run.estimation;
    record.n_used += sel.total() + est.total();
    record.non_finite += sel.non_finite + est.non_finite;
    if (sel.non_finite + est.non_finite > 0) {
      // A broken forward pass: the cascade abstains here.
      record.counts_selection = sel.votes;
      record.counts = est.votes;
      record.sigma = sigma;
      record.time_s = seconds_since(start);
      return record;
    }
    stages.push_back(run.stage);
    visited.push_back(sigma);
    record.counts_selection = sel.votes;
    record.counts = est.votes;
    record.sigma = sigma;
    record.p_a_lower = stages.back().p_a_lower;
    record.n_a = est.votes[static_cast<std::size_t>(stages.back().selected)];
    if (stages.back().decision != StageDecision::kBelowHalf) break;
    cap = std::min(cap, stages.back().cap);
  }
  const MultiscaleCertificate cert = combine_multiscale(stages, visited);
  record.prediction = cert.prediction;
  record.radius = cert.radius;
  if (!cert.abstained()) {
    record.sigma_index = plan.steps[static_cast<std::size_t>(cert.stage)].sigma_index;
    record.r_c = stages.back().radius;
  }
  record.time_s = seconds_since(start);
  return record;
}

PredictRecord multiscale_predict_example(const ClassifierPool& classifiers, const Example& example,
                                         const PerSigmaSettings& settings, double alpha, AlphaSplit split) {
  const auto start = std::chrono::steady_clock::now();
  check_pool(classifiers, settings);
  const auto num = static_cast<std::int64_t>(settings.sigma_candidates.size());
  const SamplePlan plan = multiscale_predict_plan(settings);
  PredictRecord record;
  record.idx = example.idx;
  record.label = example.label;
  // Largest σ first, stopping at the first that answers (StepCondition::kUntilPrediction).
  for (std::int64_t step = 0; step < num; ++step) {
    const SampleStep& planned = plan.steps[static_cast<std::size_t>(step)];
    const std::uint32_t i = planned.sigma_index;
    const SampleCounts c = draw_step(*classifiers[i], example.image, plan, planned, example.idx).front();
    const Prediction p = predict_unless_non_finite(c.votes, c.non_finite, multiscale_stage_alpha(alpha, step, num, split));
    record.counts = c.votes;
    record.p_value = p.p_value;
    record.non_finite += c.non_finite;
    if (c.non_finite > 0) break;  // a broken forward pass: abstain
    if (!p.abstained()) {
      record.prediction = p.prediction;
      record.sigma_index = static_cast<std::int64_t>(i);
      break;
    }
  }
  record.time_s = seconds_since(start);
  return record;
}

}  // namespace dualrs::smooth
