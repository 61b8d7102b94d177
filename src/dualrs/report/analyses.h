#pragma once
/// \file
/// The analyses that explain Dual RS (DualRS Fig. 1, Fig. 5, §6.2; docs/method.md §10.2): the
/// optimal σ per example, ΔR_c = R_c*(x) − R_c(x) (radius lost to the estimator's σ choice),
/// ΔR_σ = R_σ − R_c (negative: the estimator's radius binds), the oracle that picks each
/// example's best σ afterwards and the shares lost to R_σ and to R_c, from certification results.

#include <cstdint>
#include <string>
#include <vector>

#include "dualrs/io/result_files.h"
#include "dualrs/report/certified_accuracy.h"

namespace dualrs::report {

/// Where R_c*(x) comes from (docs/method.md §10.2).
enum class ReferenceRuns {
  /// Global-σ files with /certify/streams "dual_rs_classifier": the Dual RS classifier at
  /// every σ_i on the copies Dual RS's classifier stage draws, at α_c. With fixed sampling the
  /// counts at the chosen σ are Dual RS's own (checked per example), so ΔR_c ≥ 0 exactly.
  kDualRsClassifier,
  /// Ordinary global-σ files (their own noise, their α, possibly another classifier): the
  /// older analysis; ΔR_c then also holds Monte Carlo and classifier differences.
  kGlobalSigma,
};
std::string to_string(ReferenceRuns runs);  ///< "dual_rs_classifier", "global_sigma"

/// Per-example analysis rows, aligned with the Dual RS file's records.
struct SigmaAnalysis {
  std::vector<double> sigmas;                 ///< Σ, ascending (from the Dual RS file)
  ReferenceRuns reference = ReferenceRuns::kGlobalSigma;
  std::vector<std::string> reference_methods; ///< [|Σ|] the method of the file used at each σ_i
  /// Examples whose Dual RS classifier counts equal the reference file's at the chosen σ
  /// (selection and estimation); all of them for kDualRsClassifier with fixed sampling.
  std::int64_t same_counts = 0;
  std::vector<std::int64_t> idx;              ///< [N]
  std::vector<std::int64_t> optimal_index;    ///< [N] argmax_i of the correct reference radius (ties → smaller σ), -1 if none
  std::vector<double> optimal_radius;         ///< [N] R_c*(x): the oracle's radius (0 when no σ certifies correctly)
  std::vector<std::int64_t> chosen_index;     ///< [N] the estimator's σ (-1: abstained)
  std::vector<double> r_sigma;                ///< [N] R_σ (0 when the estimator abstained)
  std::vector<double> r_c;                    ///< [N] R_c, 0 unless the classifier certified the true class
  std::vector<double> radius;                 ///< [N] Dual RS's radius, 0 unless it certified the true class
  std::vector<double> delta_r_c;              ///< R_c*(x) − R_c(x) for examples where the estimator chose a σ
  std::vector<double> delta_r_sigma;          ///< R_σ − R_c for examples both stages certified
};

/// Builds the analysis from reference files (global-σ results at every σ of Σ over the same
/// examples) and one Dual RS file. R_c counts only correct predictions (0 otherwise). When the
/// inputs hold "dual_rs_classifier" files at every σ of Σ they are the reference (other
/// global-σ files are then ignored); otherwise plain global-σ files are. Among several
/// candidates at one σ (e.g. runs for different Σ or classifiers in one ablation), the first
/// whose counts agree with the Dual RS file's at the examples that chose that σ is used.
/// \throws DataError when the files' examples differ, a σ of Σ has no reference file, a
/// dual_rs_classifier file's α is not the Dual RS file's α_c, or (fixed sampling) its counts at
/// the chosen σ are not Dual RS's — it then describes another classifier, seed, n0/n or noise
/// (the file and example are named).
SigmaAnalysis analyze_sigma_choice(const std::vector<io::CertifyResults>& global, const io::CertifyResults& dual);

/// Where Dual RS stands at radius r (DualRS §6.2): shares of all N examples, under one
/// convention (R ≥ r inclusive, R > r strict). Each example falls in exactly one of the last
/// five: certified by Dual RS; the estimator abstained; lost to R_σ only (R_σ misses r, R_c
/// would not); lost to R_c only; lost to both. `oracle` picks each example's best σ
/// afterwards (R_c* reaches r): an upper bound for the classifier, not a method.
struct DiagnosisRow {
  double radius = 0.0;
  Convention convention = Convention::kInclusive;
  double dual_rs = 0.0;
  double oracle = 0.0;
  double estimator_abstained = 0.0;
  double lost_to_r_sigma = 0.0;
  double lost_to_r_c = 0.0;
  double lost_to_both = 0.0;
};
std::vector<DiagnosisRow> diagnose(const SigmaAnalysis& a, const std::vector<double>& radii,
                                   const std::vector<Convention>& conventions);

/// CSV `radius,convention,dual_rs,oracle,estimator_abstained,lost_to_r_sigma,lost_to_r_c,lost_to_both`
/// (dual_rs + estimator_abstained + the three lost shares = 1 on every row).
std::string diagnosis_csv(const std::vector<DiagnosisRow>& rows);

/// One row of an ablation comparison [DualRS §6.2, App. E; docs/method.md §10.3]: a Dual RS
/// result (`method`) summarised with its analysis under one convention.
struct AblationRow {
  std::string method;
  Convention convention = Convention::kInclusive;
  std::vector<double> certified_accuracy;  ///< [radii] fractions of all examples
  double acr = 0.0;                        ///< average certified radius (ℓ2)
  /// Share of the examples that have an optimal σ (some σ certifies them correctly) on which
  /// the estimator chose it; NaN when none has.
  double sigma_selection_accuracy = 0.0;
  /// Share of the examples Dual RS certified whose final radius is R_σ (R_σ < R_c); NaN when none.
  double bound_by_r_sigma = 0.0;
  double mean_delta_r_c = 0.0;             ///< mean ΔR_c over examples with a chosen σ
  double oracle_acr = 0.0;                 ///< mean R_c*(x): the oracle σ's ACR (an upper bound)
  std::int64_t num_examples = 0;
  ReferenceRuns reference = ReferenceRuns::kGlobalSigma;
};
AblationRow ablation_row(const io::CertifyResults& dual, const SigmaAnalysis& a, const std::vector<double>& radii,
                         Convention convention);

/// CSV `method,convention,num_examples,<r>...,acr,sigma_selection_accuracy,bound_by_r_sigma,
/// mean_delta_r_c,oracle_acr,reference` (one column per radius, named by the radius).
std::string ablation_csv(const std::vector<AblationRow>& rows, const std::vector<double>& radii);
/// Markdown: one table per convention (percentages, ACR in ℓ2 units), with `title` and a caption.
std::string ablation_markdown(const std::vector<AblationRow>& rows, const std::vector<double>& radii,
                              const std::string& title);

/// CSV `sigma,optimal_count,optimal_fraction,chosen_count,chosen_fraction` with a last row
/// `none` (no σ certifies the example correctly / the estimator abstained).
std::string sigma_distribution_csv(const SigmaAnalysis& a);

/// CSV `quantity,count,mean,std,min,p10,p25,median,p75,p90,max,fraction_negative,fraction_zero,reference,same_counts`
/// for delta_r_c and delta_r_sigma (quantiles by linear interpolation, numpy's default);
/// `reference` is to_string(a.reference), `same_counts` a.same_counts.
std::string delta_summary_csv(const SigmaAnalysis& a);

/// CSV confusion matrix: rows = optimal σ (and none), columns = chosen σ (and abstain).
std::string confusion_csv(const SigmaAnalysis& a);

/// Quantile q in [0, 1] of `values` (linear interpolation between order statistics).
double quantile(std::vector<double> values, double q);

}  // namespace dualrs::report
