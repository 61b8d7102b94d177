#pragma once
/// \file
/// Certified-accuracy tables (docs/method.md §10): certified accuracy at radius r, clean accuracy,
/// abstain rate and average certified radius (ACR), per method.

#include <cstdint>
#include <string>
#include <vector>

#include "dualrs/core/config.h"
#include "dualrs/core/records.h"
#include "dualrs/io/result_files.h"

namespace dualrs::report {

/// Radius comparison: inclusive = radius >= r (Cohen's analyze.py); strict = radius > r (the
/// Dual RS paper's tables). At r = 0 "strict" still counts correct certified examples whose
/// radius is 0 only under inclusive; a certified prediction always has radius > 0 unless
/// p_a_lower is exactly 0.5.
enum class Convention { kInclusive, kStrict };

std::string to_string(Convention convention);

/// Fraction of `records` that are correct, not abstained, and have radius >= r (inclusive)
/// or > r (strict). 0 for an empty list.
double certified_accuracy(const std::vector<CertifyRecord>& records, double r, Convention convention);

/// Mean over all records of radius · [correct] (abstentions count as 0).
double average_certified_radius(const std::vector<CertifyRecord>& records);

/// Per-method summary row.
struct MethodSummary {
  std::string method;
  std::int64_t num_examples = 0;
  double clean_accuracy = 0.0;  ///< correct and not abstained (certified accuracy at r = 0, inclusive)
  double abstain_rate = 0.0;
  double acr = 0.0;
  std::int64_t n0 = 0;
  std::int64_t n = 0;
  double alpha = 0.0;
};

MethodSummary summarize(const io::CertifyResults& results);

/// One row of the tidy table.
struct AccuracyRow {
  std::string method;
  double radius = 0.0;
  Convention convention = Convention::kInclusive;
  double certified_accuracy = 0.0;
  std::int64_t num_certified = 0;  ///< examples counted
  std::int64_t num_examples = 0;
};

// The radius grids (radius_preset, default_radii, table_radii) are declared in core/config.h,
// where the staged certify stops read them too (docs/method.md §10, §16).
using ::dualrs::core::default_radii;
using ::dualrs::core::radius_preset;
using ::dualrs::core::table_radii;

/// The conventions a table config asks for (inclusive, strict or both, in that order).
std::vector<Convention> table_conventions(TableConvention convention);
/// The same from the name ("inclusive", "strict" or "both"; parse_table_convention).
/// \throws ConfigError naming `/table/convention` for another name.
std::vector<Convention> table_conventions(const std::string& convention);

/// Rows for every (method, radius, convention), methods in input order.
std::vector<AccuracyRow> accuracy_rows(const std::vector<io::CertifyResults>& results, const std::vector<double>& radii,
                                       const std::vector<Convention>& conventions);

/// `text` as one CSV field: quoted (with doubled quotes) when it holds a comma, quote or newline.
std::string csv_field(const std::string& text);

/// Tidy CSV: `method,radius,convention,certified_accuracy,num_certified,num_examples`.
std::string tidy_csv(const std::vector<AccuracyRow>& rows);

/// Summary CSV: `method,num_examples,clean_accuracy,abstain_rate,acr,n0,n,alpha`.
std::string summary_csv(const std::vector<MethodSummary>& summaries);

}  // namespace dualrs::report
