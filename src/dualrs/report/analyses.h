#pragma once
/// \file
/// The analyses that explain Dual RS (DualRS Fig. 1, Fig. 5; docs/method.md §10.2): the optimal σ
/// per example, ΔR_c = R_c*(x) − R_c(x) (radius lost to the estimator's σ choice) and
/// ΔR_σ = R_σ − R_c (negative: the estimator's radius binds), from certification results.

#include <cstdint>
#include <string>
#include <vector>

#include "dualrs/io/result_files.h"

namespace dualrs::report {

/// Per-example analysis rows, aligned with the Dual RS file's records.
struct SigmaAnalysis {
  std::vector<double> sigmas;                 ///< Σ, ascending (from the global-σ files)
  std::vector<std::int64_t> idx;              ///< [N]
  std::vector<std::int64_t> optimal_index;    ///< [N] argmax_i of the correct global-σ radius (ties → smaller σ), -1 if none
  std::vector<double> optimal_radius;         ///< [N] R_c*(x)
  std::vector<std::int64_t> chosen_index;     ///< [N] the estimator's σ (-1: abstained)
  std::vector<double> delta_r_c;              ///< R_c*(x) − R_c(x) for examples where the estimator chose a σ
  std::vector<double> delta_r_sigma;          ///< R_σ − R_c for examples both stages certified
};

/// Builds the analysis from global-σ result files (one per σ of Σ, same examples, same base
/// classifier) and one Dual RS file. R_c counts only correct predictions (0 otherwise).
/// \throws DataError when the files' examples differ or a σ of Σ has no global file.
SigmaAnalysis analyze_sigma_choice(const std::vector<io::CertifyResults>& global, const io::CertifyResults& dual);

/// CSV `sigma,optimal_count,optimal_fraction,chosen_count,chosen_fraction` with a last row
/// `none` (no σ certifies the example correctly / the estimator abstained).
std::string sigma_distribution_csv(const SigmaAnalysis& a);

/// CSV `quantity,count,mean,std,min,p10,p25,median,p75,p90,max,fraction_negative,fraction_zero`
/// for delta_r_c and delta_r_sigma (quantiles by linear interpolation, numpy's default).
std::string delta_summary_csv(const SigmaAnalysis& a);

/// CSV confusion matrix: rows = optimal σ (and none), columns = chosen σ (and abstain).
std::string confusion_csv(const SigmaAnalysis& a);

/// Quantile q in [0, 1] of `values` (linear interpolation between order statistics).
double quantile(std::vector<double> values, double q);

}  // namespace dualrs::report
