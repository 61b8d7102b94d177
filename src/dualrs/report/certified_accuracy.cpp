#include "dualrs/report/certified_accuracy.h"

#include <sstream>

#include "dualrs/core/config.h"
#include "dualrs/core/error.h"

namespace dualrs::report {
namespace {
bool counts(const CertifyRecord& r, double radius, Convention convention) {
  if (r.prediction == kAbstain || !r.correct()) return false;
  return convention == Convention::kInclusive ? r.radius >= radius : r.radius > radius;
}
}  // namespace

std::string to_string(Convention convention) {
  return convention == Convention::kInclusive ? "inclusive" : "strict";
}

double certified_accuracy(const std::vector<CertifyRecord>& records, double r, Convention convention) {
  if (records.empty()) return 0.0;
  std::int64_t hits = 0;
  for (const auto& rec : records) hits += counts(rec, r, convention) ? 1 : 0;
  return static_cast<double>(hits) / static_cast<double>(records.size());
}

double average_certified_radius(const std::vector<CertifyRecord>& records) {
  if (records.empty()) return 0.0;
  double sum = 0.0;
  for (const auto& rec : records) {
    if (rec.prediction != kAbstain && rec.correct()) sum += rec.radius;
  }
  return sum / static_cast<double>(records.size());
}

MethodSummary summarize(const io::CertifyResults& results) {
  MethodSummary s;
  s.method = results.info.method;
  s.num_examples = static_cast<std::int64_t>(results.records.size());
  s.n0 = results.info.n0;
  s.n = results.info.n;
  s.alpha = results.info.alpha;
  if (results.records.empty()) return s;
  std::int64_t correct = 0, abstained = 0;
  for (const auto& rec : results.records) {
    if (rec.prediction == kAbstain) ++abstained;
    else if (rec.correct()) ++correct;
  }
  s.clean_accuracy = static_cast<double>(correct) / static_cast<double>(s.num_examples);
  s.abstain_rate = static_cast<double>(abstained) / static_cast<double>(s.num_examples);
  s.acr = average_certified_radius(results.records);
  return s;
}

std::vector<Convention> table_conventions(TableConvention convention) {
  switch (convention) {
    case TableConvention::kInclusive: return {Convention::kInclusive};
    case TableConvention::kStrict: return {Convention::kStrict};
    case TableConvention::kBoth: break;
  }
  return {Convention::kInclusive, Convention::kStrict};
}

std::vector<Convention> table_conventions(const std::string& convention) {
  return table_conventions(parse_table_convention(convention, "/table/convention"));
}

std::vector<AccuracyRow> accuracy_rows(const std::vector<io::CertifyResults>& results, const std::vector<double>& radii,
                                       const std::vector<Convention>& conventions) {
  std::vector<AccuracyRow> rows;
  for (const auto& res : results) {
    for (Convention convention : conventions) {
      for (double r : radii) {
        AccuracyRow row;
        row.method = res.info.method;
        row.radius = r;
        row.convention = convention;
        row.num_examples = static_cast<std::int64_t>(res.records.size());
        for (const auto& rec : res.records) row.num_certified += counts(rec, r, convention) ? 1 : 0;
        row.certified_accuracy = certified_accuracy(res.records, r, convention);
        rows.push_back(row);
      }
    }
  }
  return rows;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string tidy_csv(const std::vector<AccuracyRow>& rows) {
  std::ostringstream os;
  os << "method,radius,convention,certified_accuracy,num_certified,num_examples\n";
  for (const auto& row : rows) {
    os << csv_field(row.method) << ',' << format_decimal(row.radius) << ',' << to_string(row.convention) << ','
       << format_decimal(row.certified_accuracy) << ',' << row.num_certified << ',' << row.num_examples << '\n';
  }
  return os.str();
}

std::string summary_csv(const std::vector<MethodSummary>& summaries) {
  std::ostringstream os;
  os << "method,num_examples,clean_accuracy,abstain_rate,acr,n0,n,alpha\n";
  for (const auto& s : summaries) {
    os << csv_field(s.method) << ',' << s.num_examples << ',' << format_decimal(s.clean_accuracy) << ','
       << format_decimal(s.abstain_rate) << ',' << format_decimal(s.acr) << ',' << s.n0 << ',' << s.n << ','
       << format_decimal(s.alpha) << '\n';
  }
  return os.str();
}

}  // namespace dualrs::report
