#pragma once
/// \file
/// Per-σ radius labels (DualRS §5.2.1, docs/method.md §5) and the smoothed estimator's σ choices
/// for a training split, as HDF5 files (layouts in data_schemas/labels.h5.md). Both are
/// written atomically (tmp + rename) and carry provenance like result files.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualrs/io/provenance.h"

namespace dualrs::io {

/// Labels for N examples over Σ (S = |Σ| noise levels). Row-major [N, S] matrices.
struct LabelSet {
  std::vector<double> sigma_candidates;  ///< Σ, sorted ascending
  std::int64_t n = 100;                  ///< noisy votes per (example, σ)
  double alpha = 0.001;                  ///< α_label of the Clopper–Pearson bound
  std::string dataset;                   ///< dataset name
  std::string split;                     ///< split the examples come from
  bool routing = false;                  ///< R_c(x, σ_i) computed with expert i
  std::vector<std::int64_t> idx;         ///< [N] dataset indices, ascending
  std::vector<std::int64_t> label;       ///< [N] true classes
  std::vector<double> radii;             ///< [N, S] R_c(x, σ_i), pixel units; 0 = not certified correct
  std::vector<std::int64_t> top_count;   ///< [N, S] votes of the top class
  std::vector<std::int64_t> best;        ///< [N] argmax_i R_c (ties → smaller σ); -1 when all zero
  std::vector<double> max_radius;        ///< [N]
  std::vector<double> weight_e;          ///< [N] class-rebalancing weight 1/q_best; 0 for dropped rows
                                         ///< (empty in a shard file: computed when merging)
  std::vector<std::int64_t> non_finite;  ///< [N, S] copies with NaN/Inf logits (radius 0 where > 0);
                                         ///< empty when writing = none
  nlohmann::json provenance;             ///< filled when read
  std::int64_t size() const { return static_cast<std::int64_t>(idx.size()); }
  std::int64_t num_sigmas() const { return static_cast<std::int64_t>(sigma_candidates.size()); }
};

/// Writes `labels` to `path` (schema "dualrs.labels", version 1) atomically. A shard file
/// (`provenance.completion_mark`) may leave `weight_e` empty; it then has no `weight_e` and
/// `kept` datasets. \throws IoError.
void write_labels(const std::string& path, const LabelSet& labels, const Provenance& provenance);

/// Reads a labels file (a shard file when `shard`: no weights expected).
/// \throws IoError naming the file (missing, wrong schema, bad shapes).
LabelSet read_labels(const std::string& path, bool shard = false);

/// The smoothed estimator's σ choice σ_c(x) for N examples (majority vote, docs/method.md §7).
struct SigmaEstimates {
  std::vector<double> sigma_candidates;  ///< Σ
  double sigma_e = 1.0;                  ///< estimator noise level
  std::int64_t n = 0;                    ///< votes per example
  std::string dataset;
  std::string split;
  std::vector<std::int64_t> idx;          ///< [N]
  std::vector<std::int64_t> label;        ///< [N]
  std::vector<std::int64_t> sigma_index;  ///< [N] majority vote (ties → smaller σ)
  std::vector<std::int64_t> counts;       ///< [N, S] estimator votes
  std::vector<std::int64_t> non_finite;   ///< [N] estimator copies with NaN/Inf logits (they vote for
                                          ///< no σ); empty when writing = none
  nlohmann::json provenance;
  std::int64_t size() const { return static_cast<std::int64_t>(idx.size()); }
};

/// Writes estimates to `path` (schema "dualrs.sigma_estimates", version 1) atomically.
/// \throws IoError.
void write_sigma_estimates(const std::string& path, const SigmaEstimates& estimates, const Provenance& provenance);

/// Reads a σ-estimates file. \throws IoError naming the file.
SigmaEstimates read_sigma_estimates(const std::string& path);

}  // namespace dualrs::io
