#include "dualrs/smooth/certify.h"

#include <chrono>

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

CertifyRecord certify_example(model::BaseModel& model, const Example& example, const CertifyConfig& config,
                              std::uint32_t sigma_index) {
  const auto start = std::chrono::steady_clock::now();
  const SamplePlan plan = certify_plan(config, sigma_index);
  const std::vector<SampleCounts> votes = draw_step(model, example.image, plan, plan.steps.front(), example.idx);
  const SampleCounts& selection = votes[0];
  const SampleCounts& estimation = votes[1];
  Certificate cert = certify_from_counts(selection.votes, estimation.votes, config.sigma, config.alpha, config.n);
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
  record.time_s = seconds_since(start);
  return record;
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
    sink.write(certify_example(model, examples(i), config));
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
