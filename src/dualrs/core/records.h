#pragma once
/// \file
/// Per-example result records and the sink interface that receives them (docs/style.md §1:
/// computation separate from reporting). HDF5 and TSV sinks live in `dualrs/io`.

#include <cstdint>
#include <string>
#include <vector>

#include "dualrs/core/decision.h"

namespace dualrs {
inline namespace core {

/// One certified example (standard RS, docs/method.md §3).
struct CertifyRecord {
  std::int64_t idx = 0;          ///< dataset index (position in the IDX file)
  std::int64_t label = 0;        ///< true class
  std::int64_t prediction = kAbstain;  ///< certified class, or kAbstain (-1)
  double radius = 0.0;           ///< certified ℓ2 radius, pixel units; 0 when abstaining
  double p_a_lower = 0.0;        ///< Clopper–Pearson lower bound on p_A
  double sigma = 0.0;            ///< noise level used
  std::int64_t n_a = 0;          ///< estimation votes for the selected class
  double time_s = 0.0;           ///< wall time spent on this example, seconds
  /// Noisy copies whose logits held NaN/Inf, over every stage the method ran. Such an
  /// example abstains: a certificate resting on a broken forward pass is worse than none.
  std::int64_t non_finite = 0;
  Counts counts_selection;       ///< [K] votes of the n0 selection copies
  Counts counts;                 ///< [K] votes of the n estimation copies
  // Methods that choose σ per input (Dual RS, Multiscale); unused by global σ.
  std::int64_t sigma_index = kAbstain;  ///< index in Σ of the σ used (-1: none chosen)
  double r_sigma = 0.0;          ///< Dual RS: the estimator's certified radius R_σ
  double r_c = 0.0;              ///< Dual RS: the classifier's certified radius R_c at the chosen σ
  Counts estimator_counts_selection;  ///< Dual RS: [|Σ|] estimator votes of its n0 copies
  Counts estimator_counts;            ///< Dual RS: [|Σ|] estimator votes of its n copies
  /// Forward passes of the classifier (selection + estimation copies, over every stage the
  /// method ran): n0 + n for fixed CERTIFY, fewer when a staged CERTIFY stops early.
  std::int64_t n_used = 0;
  std::int64_t n_used_estimator = 0;  ///< Dual RS: the estimator's forward passes
  bool correct() const { return prediction == label; }
};

/// One predicted example (PREDICT, docs/method.md §3).
struct PredictRecord {
  std::int64_t idx = 0;
  std::int64_t label = 0;
  std::int64_t prediction = kAbstain;
  double p_value = 1.0;          ///< two-sided binomial test p-value of top-1 vs top-2
  std::int64_t sigma_index = kAbstain;  ///< Dual RS / Multiscale: index in Σ of the σ used
  double time_s = 0.0;
  std::int64_t non_finite = 0;   ///< copies with NaN/Inf logits (the example abstains when > 0)
  Counts counts;                 ///< [K] votes of the n copies
  bool correct() const { return prediction == label; }
};

/// Receives records as they are produced; `finish` publishes the result (a sink that is
/// destroyed without `finish` leaves no partial output behind).
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  virtual void write(const CertifyRecord& record) = 0;
  virtual void write(const PredictRecord& record) = 0;
  virtual void finish() = 0;
};

/// Keeps records in memory (tests, tables).
class MemorySink : public ResultSink {
 public:
  void write(const CertifyRecord& record) override { certified.push_back(record); }
  void write(const PredictRecord& record) override { predicted.push_back(record); }
  void finish() override { finished = true; }
  std::vector<CertifyRecord> certified;
  std::vector<PredictRecord> predicted;
  bool finished = false;
};

/// Sends every record to several sinks (e.g. HDF5 and TSV).
class TeeSink : public ResultSink {
 public:
  explicit TeeSink(std::vector<ResultSink*> sinks) : sinks_(std::move(sinks)) {}
  void write(const CertifyRecord& r) override { for (auto* s : sinks_) s->write(r); }
  void write(const PredictRecord& r) override { for (auto* s : sinks_) s->write(r); }
  void finish() override { for (auto* s : sinks_) s->finish(); }

 private:
  std::vector<ResultSink*> sinks_;
};

}  // namespace core
}  // namespace dualrs
