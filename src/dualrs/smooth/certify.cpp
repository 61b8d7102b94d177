#include "dualrs/smooth/certify.h"

#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "dualrs/core/error.h"
#include "dualrs/smooth/sample_counts.h"
#include "dualrs/smooth/sample_plan.h"

namespace dualrs::smooth {
namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

Certificate abstain_non_finite(Certificate cert) {
  cert.prediction = kAbstain;
  cert.radius = 0.0;
  return cert;
}

Prediction predict_unless_non_finite(const Counts& votes, std::int64_t non_finite, double alpha) {
  if (non_finite > 0) return Prediction{};
  return predict_from_counts(votes, alpha);
}

const StagedThresholds& shared_thresholds(const LookSchedule& schedule, double sigma,
                                          const std::vector<double>& stop_radii, double alpha_scale,
                                          double futility_beta) {
  using Key = std::tuple<std::vector<std::int64_t>, std::vector<double>, double, std::vector<double>, double, double>;
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<StagedThresholds>> cache;
  const Key key{schedule.n, schedule.alpha, sigma, stop_radii, alpha_scale, futility_beta};
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) {
    it = cache.emplace(key, std::make_unique<StagedThresholds>(schedule, sigma, stop_radii, alpha_scale, futility_beta))
             .first;
  }
  return *it->second;
}

StagedEstimate staged_estimate(model::BaseModel& model, const at::Tensor& x, const NoiseSource& noise,
                               NoiseRequest request, std::int64_t c_hat, const StagedThresholds& thresholds, double cap) {
  const LookSchedule& schedule = thresholds.schedule();
  StagedEstimate out;
  out.best.selected = c_hat;
  out.counts.votes.assign(static_cast<std::size_t>(model.num_classes()), 0);
  std::int64_t drawn = 0;
  double best_radius = -1.0;  // none certifies yet
  for (std::size_t j = 0; j < schedule.size(); ++j) {
    request.first_sample = drawn;
    request.count = schedule.n[j] - drawn;
    add_counts(out.counts, sample_counts(model, x, noise, request));
    drawn = schedule.n[j];
    out.looks_taken = j + 1;
    if (out.counts.non_finite > 0) {  // the caller abstains: no more copies
      out.outcome = LookOutcome::kReachedCap;
      return out;
    }
    const std::int64_t n_a = out.counts.votes[static_cast<std::size_t>(c_hat)];
    Certificate cert = thresholds.certificate(j, n_a);
    if (!cert.abstained() && cert.radius > best_radius) {
      best_radius = cert.radius;
      cert.prediction = c_hat;
      cert.selected = c_hat;
      out.best = cert;
    } else if (best_radius < 0) {
      cert.selected = c_hat;
      out.best = cert;  // abstaining so far: report the latest look's bound
    }
    out.outcome = next_look(thresholds, j, n_a, best_radius, cap);
    if (out.outcome != LookOutcome::kContinue) break;
  }
  return out;
}

StagedCertificate staged_certify_step(model::BaseModel& model, const Example& example, const SamplePlan& plan,
                                      const SampleStep& step, std::int64_t n0, std::int64_t n, const StagedConfig& staged,
                                      const std::vector<double>& stop_radii, double alpha,
                                      const std::function<double(std::int64_t c_hat)>& cap) {
  StagedCertificate out;
  const NoiseRequest base{example.idx, step.sigma_index, step.sigma, 0, n0, plan.batch_size};
  out.selection = sample_counts(model, example.image, NoiseSource(plan.seed, step.draws[0].stage, plan.noise), base);
  const std::int64_t c_hat = argmax_lowest(out.selection.votes);
  const LookSchedule schedule = look_schedule(staged, n, alpha);
  const StagedThresholds& thresholds = shared_thresholds(schedule, step.sigma, stop_radii, 1.0, staged.futility_beta);
  const StagedEstimate est = staged_estimate(model, example.image, NoiseSource(plan.seed, step.draws[1].stage, plan.noise),
                                             base, c_hat, thresholds, cap(c_hat));
  out.cert = est.best;
  out.estimation = est.counts;
  out.copies = n0 + est.counts.total();
  return out;
}

namespace {
// The record of a global-σ CERTIFY from its certificate and the copies drawn (an abstention
// when some copy had non-finite logits).
CertifyRecord global_record(const Example& example, const CertifyConfig& config, Certificate cert,
                            const SampleCounts& selection, const SampleCounts& estimation,
                            std::chrono::steady_clock::time_point start) {
  CertifyRecord record;
  record.non_finite = selection.non_finite + estimation.non_finite;
  if (record.non_finite > 0) cert = abstain_non_finite(cert);
  record.idx = example.idx;
  record.label = example.label;
  record.prediction = cert.prediction;
  record.radius = cert.radius;
  record.p_a_lower = cert.p_a_lower;
  record.sigma = config.sigma;
  record.n_a = cert.n_a;
  record.counts_selection = selection.votes;
  record.counts = estimation.votes;
  record.n_used = selection.total() + estimation.total();
  record.time_s = seconds_since(start);
  return record;
}

// CERTIFY with sampling "staged": selection as fixed CERTIFY, estimation in looks.
CertifyRecord certify_staged(model::BaseModel& model, const Example& example, const CertifyConfig& config,
                             std::uint32_t sigma_index) {
  const auto start = std::chrono::steady_clock::now();
  const SamplePlan plan = certify_plan(config, sigma_index);
  const StagedCertificate c = staged_certify_step(model, example, plan, plan.steps.front(), config.n0, config.n,
                                                  config.staged, config.stop_radii, config.alpha,
                                                  [](std::int64_t) { return INFINITY; });
  return global_record(example, config, c.cert, c.selection, c.estimation, start);
}
}  // namespace

CertifyRecord certify_example(model::BaseModel& model, const Example& example, const CertifyConfig& config,
                              std::uint32_t sigma_index) {
  if (config.sampling == Sampling::kStaged) return certify_staged(model, example, config, sigma_index);
  const auto start = std::chrono::steady_clock::now();
  const SamplePlan plan = certify_plan(config, sigma_index);
  const std::vector<SampleCounts> votes = draw_step(model, example.image, plan, plan.steps.front(), example.idx);
  const SampleCounts& selection = votes[0];
  const SampleCounts& estimation = votes[1];
  const Certificate cert = certify_from_counts(selection.votes, estimation.votes, config.sigma, config.alpha, config.n);
  return global_record(example, config, cert, selection, estimation, start);
}

PredictRecord predict_example(model::BaseModel& model, const Example& example, const PredictConfig& config,
                              std::uint32_t sigma_index) {
  const auto start = std::chrono::steady_clock::now();
  const SamplePlan plan = predict_plan(config, sigma_index);
  const SampleCounts counts = draw_step(model, example.image, plan, plan.steps.front(), example.idx).front();
  const Prediction prediction = predict_unless_non_finite(counts.votes, counts.non_finite, config.alpha);
  PredictRecord record;
  record.non_finite = counts.non_finite;
  record.idx = example.idx;
  record.label = example.label;
  record.prediction = prediction.prediction;
  record.p_value = prediction.p_value;
  record.counts = counts.votes;
  record.time_s = seconds_since(start);
  return record;
}

void certify_all(model::BaseModel& model, std::int64_t count, const ExampleFn& examples, const CertifyConfig& config,
                 ResultSink& sink, ProgressMeter* progress) {
  validate(config);
  model.set_training(false);
  for (std::int64_t i = 0; i < count; ++i) {
    sink.write(certify_example(model, examples(i), config, config.sigma_word));
    if (progress != nullptr) progress->update(i + 1);
  }
}

void predict_all(model::BaseModel& model, std::int64_t count, const ExampleFn& examples, const PredictConfig& config,
                 ResultSink& sink, ProgressMeter* progress) {
  validate(config);
  model.set_training(false);
  for (std::int64_t i = 0; i < count; ++i) {
    sink.write(predict_example(model, examples(i), config));
    if (progress != nullptr) progress->update(i + 1);
  }
}

}  // namespace dualrs::smooth
