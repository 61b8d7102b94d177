#include "dualrs/report/analyses.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "dualrs/core/config.h"
#include "dualrs/core/error.h"

namespace dualrs::report {
namespace {
double correct_radius(const CertifyRecord& r) { return (r.prediction != kAbstain && r.correct()) ? r.radius : 0.0; }
}  // namespace

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (pos - static_cast<double>(lo)) * (values[hi] - values[lo]);
}

std::string to_string(ReferenceRuns runs) {
  return runs == ReferenceRuns::kDualRsClassifier ? "dual_rs_classifier" : "global_sigma";
}

namespace {
// The reference file at each σ of Σ among `global` whose `streams` attribute is `streams`;
// nullptr where none is.
// Whether `g` holds `dual`'s classifier counts at every example that chose σ index i.
bool same_copies(const io::CertifyResults& g, const io::CertifyResults& dual, std::size_t i) {
  if (g.records.size() != dual.records.size()) return false;
  for (std::size_t e = 0; e < dual.records.size(); ++e) {
    const CertifyRecord& d = dual.records[e];
    if (d.sigma_index != static_cast<std::int64_t>(i)) continue;
    if (g.records[e].idx != d.idx || g.records[e].counts != d.counts || g.records[e].counts_selection != d.counts_selection) {
      return false;
    }
  }
  return true;
}

std::vector<const io::CertifyResults*> files_by_sigma(const std::vector<io::CertifyResults>& global,
                                                      const io::CertifyResults& dual, const std::string& streams) {
  const std::vector<double>& sigmas = dual.info.sigma_candidates;
  std::vector<const io::CertifyResults*> by_sigma(sigmas.size(), nullptr);
  for (std::size_t i = 0; i < sigmas.size(); ++i) {
    for (const auto& g : global) {
      if (g.info.streams != streams || g.info.sigma != sigmas[i]) continue;
      if (by_sigma[i] == nullptr) by_sigma[i] = &g;  // the first, unless a later one holds Dual RS's copies
      if (streams == "dual_rs_classifier" && same_copies(g, dual, i)) {
        by_sigma[i] = &g;
        break;
      }
    }
  }
  return by_sigma;
}

bool complete(const std::vector<const io::CertifyResults*>& files) {
  return std::all_of(files.begin(), files.end(), [](const io::CertifyResults* f) { return f != nullptr; });
}
}  // namespace

SigmaAnalysis analyze_sigma_choice(const std::vector<io::CertifyResults>& global, const io::CertifyResults& dual) {
  SigmaAnalysis a;
  a.sigmas = dual.info.sigma_candidates;
  DUALRS_CHECK(!a.sigmas.empty(), DataError, "the Dual RS results hold no sigma_candidates (method ", dual.info.method, ")");
  std::vector<const io::CertifyResults*> by_sigma = files_by_sigma(global, dual, "dual_rs_classifier");
  a.reference = ReferenceRuns::kDualRsClassifier;
  if (!complete(by_sigma)) {
    by_sigma = files_by_sigma(global, dual, "global");
    a.reference = ReferenceRuns::kGlobalSigma;
  }
  for (std::size_t i = 0; i < a.sigmas.size(); ++i) {
    DUALRS_CHECK(by_sigma[i] != nullptr, DataError, "no global-sigma result for sigma = ", format_decimal(a.sigmas[i]),
                 " among the analysis inputs");
    DUALRS_CHECK(by_sigma[i]->records.size() == dual.records.size(), DataError, "global-sigma result ",
                 by_sigma[i]->info.method, " has ", by_sigma[i]->records.size(), " examples, the Dual RS result ",
                 dual.records.size());
    if (a.reference == ReferenceRuns::kDualRsClassifier) {
      DUALRS_CHECK(by_sigma[i]->info.alpha == dual.info.alpha_c, DataError, "per-sigma result ", by_sigma[i]->info.method,
                   " was certified at alpha = ", format_decimal(by_sigma[i]->info.alpha), ", the Dual RS classifier of ",
                   dual.info.method, " at alpha_c = ", format_decimal(dual.info.alpha_c),
                   ": R_c* must use the same alpha_c (docs/method.md 10.2)");
      DUALRS_CHECK(by_sigma[i]->info.n0 == dual.info.n0 && by_sigma[i]->info.n == dual.info.n, DataError,
                   "per-sigma result ", by_sigma[i]->info.method, " has n0 = ", by_sigma[i]->info.n0, ", n = ",
                   by_sigma[i]->info.n, ", the Dual RS result ", dual.info.method, " n0 = ", dual.info.n0, ", n = ",
                   dual.info.n);
    }
    a.reference_methods.push_back(by_sigma[i]->info.method);
  }
  const bool fixed = dual.info.sampling == "fixed";
  for (std::size_t e = 0; e < dual.records.size(); ++e) {
    const CertifyRecord& d = dual.records[e];
    std::int64_t best = -1;
    double best_radius = 0.0;
    for (std::size_t i = 0; i < a.sigmas.size(); ++i) {
      const CertifyRecord& g = by_sigma[i]->records[e];
      DUALRS_CHECK(g.idx == d.idx, DataError, "example ", d.idx, " of the Dual RS result is example ", g.idx, " in ",
                   by_sigma[i]->info.method, ": the files certify different examples");
      if (correct_radius(g) > best_radius) {
        best_radius = correct_radius(g);
        best = static_cast<std::int64_t>(i);
      }
    }
    if (d.sigma_index >= 0) {
      const CertifyRecord& at_chosen = by_sigma[static_cast<std::size_t>(d.sigma_index)]->records[e];
      const bool same = at_chosen.counts == d.counts && at_chosen.counts_selection == d.counts_selection;
      if (same) ++a.same_counts;
      // On Dual RS's own copies the reference must reproduce them: anything else describes
      // another classifier, seed, n0/n or noise, and ΔR_c would not mean what it says.
      DUALRS_CHECK(same || !fixed || a.reference != ReferenceRuns::kDualRsClassifier, DataError, "per-sigma result ",
                   by_sigma[static_cast<std::size_t>(d.sigma_index)]->info.method, " does not hold the copies ",
                   dual.info.method, " drew at sigma = ", format_decimal(a.sigmas[static_cast<std::size_t>(d.sigma_index)]),
                   " for example ", d.idx, ": another classifier, seed, n0/n or noise");
    } else {
      ++a.same_counts;  // nothing drawn by the classifier: nothing to differ
    }
    const bool certified_true = d.prediction != kAbstain && d.correct();
    a.idx.push_back(d.idx);
    a.optimal_index.push_back(best);
    a.optimal_radius.push_back(best_radius);
    a.chosen_index.push_back(d.sigma_index);
    a.r_sigma.push_back(d.sigma_index >= 0 ? d.r_sigma : 0.0);
    a.r_c.push_back(certified_true ? d.r_c : 0.0);
    a.radius.push_back(certified_true ? d.radius : 0.0);
    if (d.sigma_index >= 0) a.delta_r_c.push_back(best_radius - a.r_c.back());
    if (d.prediction != kAbstain) a.delta_r_sigma.push_back(d.r_sigma - d.r_c);
  }
  return a;
}

std::vector<DiagnosisRow> diagnose(const SigmaAnalysis& a, const std::vector<double>& radii,
                                   const std::vector<Convention>& conventions) {
  std::vector<DiagnosisRow> rows;
  const auto n = static_cast<double>(std::max<std::size_t>(1, a.idx.size()));
  for (const Convention convention : conventions) {
    // A radius "reaches" r: it certifies at all (> 0) and is ≥ r (inclusive) or > r (strict).
    const auto reaches = [convention](double radius, double r) {
      return radius > 0 && (convention == Convention::kStrict ? radius > r : radius >= r);
    };
    for (const double r : radii) {
      DiagnosisRow row;
      row.radius = r;
      row.convention = convention;
      std::int64_t dual = 0, oracle = 0, abstained = 0, by_sigma = 0, by_c = 0, both = 0;
      for (std::size_t e = 0; e < a.idx.size(); ++e) {
        if (reaches(a.optimal_radius[e], r)) ++oracle;
        if (reaches(a.radius[e], r)) {
          ++dual;
        } else if (a.chosen_index[e] < 0) {
          ++abstained;
        } else {
          const bool sigma_ok = reaches(a.r_sigma[e], r);
          const bool c_ok = reaches(a.r_c[e], r);
          if (!sigma_ok && c_ok) ++by_sigma;
          else if (sigma_ok && !c_ok) ++by_c;
          else ++both;  // both short (both reaching r would make Dual RS certify r)
        }
      }
      row.dual_rs = static_cast<double>(dual) / n;
      row.oracle = static_cast<double>(oracle) / n;
      row.estimator_abstained = static_cast<double>(abstained) / n;
      row.lost_to_r_sigma = static_cast<double>(by_sigma) / n;
      row.lost_to_r_c = static_cast<double>(by_c) / n;
      row.lost_to_both = static_cast<double>(both) / n;
      rows.push_back(row);
    }
  }
  return rows;
}

std::string diagnosis_csv(const std::vector<DiagnosisRow>& rows) {
  std::ostringstream os;
  os << "radius,convention,dual_rs,oracle,estimator_abstained,lost_to_r_sigma,lost_to_r_c,lost_to_both\n";
  for (const DiagnosisRow& r : rows) {
    os << format_decimal(r.radius) << ',' << to_string(r.convention);
    for (const double x : {r.dual_rs, r.oracle, r.estimator_abstained, r.lost_to_r_sigma, r.lost_to_r_c, r.lost_to_both}) {
      os << ',' << format_decimal(x);
    }
    os << '\n';
  }
  return os.str();
}

namespace {
double mean_of(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? NAN : sum / static_cast<double>(v.size());
}
}  // namespace

AblationRow ablation_row(const io::CertifyResults& dual, const SigmaAnalysis& a, const std::vector<double>& radii,
                         Convention convention) {
  AblationRow row;
  row.method = dual.info.method;
  row.convention = convention;
  for (const double r : radii) row.certified_accuracy.push_back(certified_accuracy(dual.records, r, convention));
  row.acr = average_certified_radius(dual.records);
  std::int64_t with_optimal = 0, right = 0;
  for (std::size_t e = 0; e < a.idx.size(); ++e) {
    if (a.optimal_index[e] < 0) continue;
    ++with_optimal;
    if (a.chosen_index[e] == a.optimal_index[e]) ++right;
  }
  row.sigma_selection_accuracy = with_optimal > 0 ? static_cast<double>(right) / static_cast<double>(with_optimal) : NAN;
  const auto bound = std::count_if(a.delta_r_sigma.begin(), a.delta_r_sigma.end(), [](double d) { return d < 0; });
  row.bound_by_r_sigma =
      a.delta_r_sigma.empty() ? NAN : static_cast<double>(bound) / static_cast<double>(a.delta_r_sigma.size());
  row.mean_delta_r_c = mean_of(a.delta_r_c);
  row.oracle_acr = a.optimal_radius.empty() ? 0.0 : mean_of(a.optimal_radius);
  row.num_examples = static_cast<std::int64_t>(a.idx.size());
  row.reference = a.reference;
  return row;
}

std::string ablation_csv(const std::vector<AblationRow>& rows, const std::vector<double>& radii) {
  std::ostringstream os;
  os << "method,convention,num_examples";
  for (const double r : radii) os << ',' << format_decimal(r);
  os << ",acr,sigma_selection_accuracy,bound_by_r_sigma,mean_delta_r_c,oracle_acr,reference\n";
  for (const AblationRow& row : rows) {
    os << csv_field(row.method) << ',' << to_string(row.convention) << ',' << row.num_examples;
    for (const double x : row.certified_accuracy) os << ',' << format_decimal(x);
    for (const double x : {row.acr, row.sigma_selection_accuracy, row.bound_by_r_sigma, row.mean_delta_r_c, row.oracle_acr}) {
      os << ',' << format_decimal(x);
    }
    os << ',' << to_string(row.reference) << '\n';
  }
  return os.str();
}

std::string ablation_markdown(const std::vector<AblationRow>& rows, const std::vector<double>& radii,
                              const std::string& title) {
  const auto percent = [](double x) {
    if (std::isnan(x)) return std::string("–");
    std::ostringstream s;
    s.setf(std::ios::fixed);
    s.precision(1);
    s << 100 * x;
    return s.str();
  };
  const auto fixed3 = [](double x) {
    std::ostringstream s;
    s.setf(std::ios::fixed);
    s.precision(3);
    s << x;
    return s.str();
  };
  std::ostringstream os;
  std::vector<Convention> conventions;
  for (const AblationRow& row : rows) {
    if (std::find(conventions.begin(), conventions.end(), row.convention) == conventions.end()) {
      conventions.push_back(row.convention);
    }
  }
  for (const Convention convention : conventions) {
    const auto first = std::find_if(rows.begin(), rows.end(), [&](const AblationRow& r) { return r.convention == convention; });
    os << title << ": certified accuracy (%) at ℓ2 radius r (" << to_string(convention)
       << (convention == Convention::kStrict ? ", radius > r" : ", radius ≥ r") << "), " << first->num_examples
       << " examples; ACR; σ-sel. = the estimator picked the optimal σ (% of the examples some σ certifies "
          "correctly); R_σ binds = final radius is R_σ (% of the certified); oracle ACR = best σ per example "
          "picked afterwards (an upper bound, not a method). R_c* from "
       << to_string(first->reference) << " runs.\n\n| variant |";
    for (const double r : radii) os << ' ' << format_decimal(r) << " |";
    os << " ACR | σ-sel. | R_σ binds | mean ΔR_c | oracle ACR |\n|---|";
    for (std::size_t i = 0; i < radii.size() + 5; ++i) os << "---:|";
    os << '\n';
    for (const AblationRow& row : rows) {
      if (row.convention != convention) continue;
      os << "| " << row.method << " |";
      for (const double x : row.certified_accuracy) os << ' ' << percent(x) << " |";
      os << ' ' << fixed3(row.acr) << " | " << percent(row.sigma_selection_accuracy) << " | "
         << percent(row.bound_by_r_sigma) << " | " << fixed3(row.mean_delta_r_c) << " | " << fixed3(row.oracle_acr)
         << " |\n";
    }
    os << '\n';
  }
  return os.str();
}

std::string sigma_distribution_csv(const SigmaAnalysis& a) {
  const auto n = static_cast<double>(std::max<std::size_t>(1, a.idx.size()));
  std::ostringstream os;
  os << "sigma,optimal_count,optimal_fraction,chosen_count,chosen_fraction\n";
  // Rows for each σ, then "none" (key -1).
  for (std::int64_t i = 0; i <= static_cast<std::int64_t>(a.sigmas.size()); ++i) {
    const std::int64_t key = i == static_cast<std::int64_t>(a.sigmas.size()) ? -1 : i;
    const auto opt = std::count(a.optimal_index.begin(), a.optimal_index.end(), key);
    const auto cho = std::count(a.chosen_index.begin(), a.chosen_index.end(), key);
    os << (key < 0 ? std::string("none") : format_decimal(a.sigmas[static_cast<std::size_t>(key)])) << ',' << opt << ','
       << format_decimal(static_cast<double>(opt) / n) << ',' << cho << ','
       << format_decimal(static_cast<double>(cho) / n) << '\n';
  }
  return os.str();
}

std::string delta_summary_csv(const SigmaAnalysis& a) {
  std::ostringstream os;
  os << "quantity,count,mean,std,min,p10,p25,median,p75,p90,max,fraction_negative,fraction_zero,reference,same_counts\n";
  for (const auto& [name, values] : {std::pair<std::string, const std::vector<double>*>{"delta_r_c", &a.delta_r_c},
                                     {"delta_r_sigma", &a.delta_r_sigma}}) {
    const auto& v = *values;
    double mean = 0, sq = 0;
    for (double x : v) mean += x;
    mean = v.empty() ? NAN : mean / static_cast<double>(v.size());
    for (double x : v) sq += (x - mean) * (x - mean);
    const double sd = v.size() > 1 ? std::sqrt(sq / static_cast<double>(v.size() - 1)) : NAN;
    const auto neg = std::count_if(v.begin(), v.end(), [](double x) { return x < 0; });
    const auto zero = std::count_if(v.begin(), v.end(), [](double x) { return x == 0; });
    const double count = static_cast<double>(std::max<std::size_t>(1, v.size()));
    os << name << ',' << v.size();
    for (const double x : {mean, sd, quantile(v, 0), quantile(v, 0.1), quantile(v, 0.25), quantile(v, 0.5),
                           quantile(v, 0.75), quantile(v, 0.9), quantile(v, 1), static_cast<double>(neg) / count,
                           static_cast<double>(zero) / count}) {
      os << ',' << format_decimal(x);
    }
    os << ',' << to_string(a.reference) << ',' << a.same_counts << '\n';
  }
  return os.str();
}

std::string confusion_csv(const SigmaAnalysis& a) {
  const std::size_t s = a.sigmas.size();
  std::vector<std::vector<std::int64_t>> m(s + 1, std::vector<std::int64_t>(s + 1, 0));
  for (std::size_t e = 0; e < a.idx.size(); ++e) {
    const std::size_t row = a.optimal_index[e] < 0 ? s : static_cast<std::size_t>(a.optimal_index[e]);
    const std::size_t col = a.chosen_index[e] < 0 ? s : static_cast<std::size_t>(a.chosen_index[e]);
    ++m[row][col];
  }
  std::ostringstream os;
  os << "optimal_sigma";
  for (std::size_t j = 0; j < s; ++j) os << ",chosen_" << format_decimal(a.sigmas[j]);
  os << ",chosen_abstain\n";
  for (std::size_t i = 0; i <= s; ++i) {
    os << (i == s ? std::string("none") : format_decimal(a.sigmas[i]));
    for (std::size_t j = 0; j <= s; ++j) os << ',' << m[i][j];
    os << '\n';
  }
  return os.str();
}

}  // namespace dualrs::report
