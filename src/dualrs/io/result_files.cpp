#include "dualrs/io/result_files.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <tuple>
#include <utility>

#include "dualrs/core/config.h"
#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/hdf5_file.h"

namespace dualrs::io {
namespace {

constexpr const char* kCertifySchema = "dualrs.certify";
constexpr const char* kPredictSchema = "dualrs.predict";
constexpr std::int64_t kSchemaVersion = 1;  // data_schemas/certify_results.h5.md

template <typename Record>
void sort_and_check_unique(std::vector<Record>& records, const std::string& path) {
  std::stable_sort(records.begin(), records.end(), [](const Record& a, const Record& b) { return a.idx < b.idx; });
  for (std::size_t i = 1; i < records.size(); ++i) {
    if (records[i].idx == records[i - 1].idx) {
      DUALRS_THROW(IoError, "duplicate example index ", records[i].idx, " in the results for '", path, "'");
    }
  }
}

void check_counts(const Counts& counts, const char* field, std::int64_t idx, std::int64_t num_classes,
                  const std::string& path) {
  if (static_cast<std::int64_t>(counts.size()) != num_classes) {
    DUALRS_THROW(IoError, "example ", idx, ": '", field, "' has ", counts.size(), " classes, but '", path,
                 "' is written with num_classes = ", num_classes);
  }
}

template <typename Record, typename Get>
auto column(const std::vector<Record>& records, Get get) {
  std::vector<decltype(get(records.front()))> out;
  out.reserve(records.size());
  for (const Record& r : records) out.push_back(get(r));
  return out;
}

template <typename Record>
std::vector<std::int64_t> counts_matrix(const std::vector<Record>& records, const Counts Record::*field) {
  std::size_t total = 0;
  for (const Record& r : records) total += (r.*field).size();
  std::vector<std::int64_t> out;
  out.reserve(total);  // exactly [N, K]: no growth beyond it (ImageNet: N x 1,000)
  for (const Record& r : records) {
    const Counts& c = r.*field;
    out.insert(out.end(), c.begin(), c.end());
  }
  return out;
}

void write_root_attributes(Hdf5File& f, const std::string& schema, const ResultInfo& info, const Provenance& p) {
  const std::string root = "/";
  f.set_attr(root, "schema", schema);
  f.set_attr(root, "schema_version", kSchemaVersion);
  f.set_attr(root, "method", info.method);
  f.set_attr(root, "kind", info.kind);
  f.set_attr(root, "sigma", info.sigma);
  f.set_attr(root, "n0", info.n0);
  f.set_attr(root, "n", info.n);
  f.set_attr(root, "alpha", info.alpha);
  f.set_attr(root, "num_classes", info.num_classes);
  f.set_attr(root, "dataset", info.dataset);
  f.set_attr(root, "split", info.split);
  f.set_attr(root, "noise", info.noise);
  if (info.kind == "certify") f.set_attr(root, "sampling", info.sampling);
  if (info.streams != "global") f.set_attr(root, "streams", info.streams);
  if (!info.sigma_candidates.empty()) {
    f.set_attr(root, "sigma_candidates", info.sigma_candidates);
    f.set_attr(root, "sigma_e", info.sigma_e);
    f.set_attr(root, "alpha_e", info.alpha_e);
    f.set_attr(root, "alpha_c", info.alpha_c);
  }
  write_provenance_attributes(f, p);
}

std::vector<std::int8_t> correct_column(const std::vector<std::int64_t>& prediction,
                                        const std::vector<std::int64_t>& label) {
  std::vector<std::int8_t> out(prediction.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = prediction[i] == label[i] ? 1 : 0;
  return out;
}

// Per-σ datasets of methods that choose σ per input (see ResultInfo::sigma_candidates).
void write_sigma_datasets(Hdf5File& f, const std::vector<CertifyRecord>& r, const ResultInfo& info) {
  const std::vector<std::uint64_t> n{r.size()};
  f.write_int64("sigma_index", column(r, [](const CertifyRecord& x) { return x.sigma_index; }), n);
  f.write_float64("r_sigma", column(r, [](const CertifyRecord& x) { return x.r_sigma; }), n);
  f.write_float64("r_c", column(r, [](const CertifyRecord& x) { return x.r_c; }), n);
  if (info.sigma_e > 0) {
    const std::vector<std::uint64_t> ns{r.size(), info.sigma_candidates.size()};
    f.write_int64("estimator_counts_selection", counts_matrix(r, &CertifyRecord::estimator_counts_selection), ns);
    f.write_int64("estimator_counts", counts_matrix(r, &CertifyRecord::estimator_counts), ns);
    f.write_int64("n_used_estimator", column(r, [](const CertifyRecord& x) { return x.n_used_estimator; }), n);
  }
}

void write_certify_datasets(Hdf5File& f, const std::vector<CertifyRecord>& r, std::uint64_t k) {
  const std::vector<std::uint64_t> n{r.size()};
  const std::vector<std::uint64_t> nk{r.size(), k};
  const auto idx = column(r, [](const CertifyRecord& x) { return x.idx; });
  const auto label = column(r, [](const CertifyRecord& x) { return x.label; });
  const auto prediction = column(r, [](const CertifyRecord& x) { return x.prediction; });
  f.write_int64("idx", idx, n);
  f.write_int64("label", label, n);
  f.write_int64("prediction", prediction, n);
  f.write_float64("radius", column(r, [](const CertifyRecord& x) { return x.radius; }), n);
  f.write_float64("p_a_lower", column(r, [](const CertifyRecord& x) { return x.p_a_lower; }), n);
  f.write_float64("sigma", column(r, [](const CertifyRecord& x) { return x.sigma; }), n);
  f.write_int64("n_a", column(r, [](const CertifyRecord& x) { return x.n_a; }), n);
  f.write_int8("correct", correct_column(prediction, label), n);
  f.write_float64("time_s", column(r, [](const CertifyRecord& x) { return x.time_s; }), n);
  f.write_int64("non_finite", column(r, [](const CertifyRecord& x) { return x.non_finite; }), n);
  f.write_int64("n_used", column(r, [](const CertifyRecord& x) { return x.n_used; }), n);
  f.write_int64("counts_selection", counts_matrix(r, &CertifyRecord::counts_selection), nk);
  f.write_int64("counts", counts_matrix(r, &CertifyRecord::counts), nk);
}

void write_predict_datasets(Hdf5File& f, const std::vector<PredictRecord>& r, std::uint64_t k) {
  const std::vector<std::uint64_t> n{r.size()};
  const std::vector<std::uint64_t> nk{r.size(), k};
  const auto idx = column(r, [](const PredictRecord& x) { return x.idx; });
  const auto label = column(r, [](const PredictRecord& x) { return x.label; });
  const auto prediction = column(r, [](const PredictRecord& x) { return x.prediction; });
  f.write_int64("idx", idx, n);
  f.write_int64("label", label, n);
  f.write_int64("prediction", prediction, n);
  f.write_float64("p_value", column(r, [](const PredictRecord& x) { return x.p_value; }), n);
  f.write_int8("correct", correct_column(prediction, label), n);
  f.write_float64("time_s", column(r, [](const PredictRecord& x) { return x.time_s; }), n);
  f.write_int64("non_finite", column(r, [](const PredictRecord& x) { return x.non_finite; }), n);
  f.write_int64("counts", counts_matrix(r, &PredictRecord::counts), nk);
}

}  // namespace

// --- Hdf5ResultSink ------------------------------------------------------------------------

Hdf5ResultSink::Hdf5ResultSink(std::string path, ResultInfo info, Provenance provenance)
    : path_(std::move(path)), info_(std::move(info)), provenance_(std::move(provenance)) {
  if (info_.kind != "certify" && info_.kind != "predict") {
    DUALRS_THROW(IoError, "result file '", path_, "': kind must be \"certify\" or \"predict\", got \"", info_.kind,
                 "\"");
  }
  const std::string schema = info_.kind == "certify" ? kCertifySchema : kPredictSchema;
  if (!provenance_.schema.empty() && provenance_.schema != schema) {
    DUALRS_THROW(IoError, "result file '", path_, "': provenance schema \"", provenance_.schema,
                 "\" does not match kind \"", info_.kind, "\" (", schema, ")");
  }
  if (info_.num_classes < 0) {
    DUALRS_THROW(IoError, "result file '", path_, "': num_classes must be >= 0, got ", info_.num_classes);
  }
}

Hdf5ResultSink::~Hdf5ResultSink() {
  // Never touch path_: an earlier complete file there stays as it was.
  if (!finished_) std::remove(temporary_path(path_).c_str());
}

void Hdf5ResultSink::check(const CertifyRecord& record) const {
  if (info_.kind != "certify") {
    DUALRS_THROW(IoError, "a certify record (example ", record.idx, ") was sent to the predict result file '", path_,
                 "'");
  }
  check_counts(record.counts_selection, "counts_selection", record.idx, info_.num_classes, path_);
  check_counts(record.counts, "counts", record.idx, info_.num_classes, path_);
  if (info_.sigma_e > 0) {
    const auto s = static_cast<std::int64_t>(info_.sigma_candidates.size());
    check_counts(record.estimator_counts_selection, "estimator_counts_selection", record.idx, s, path_);
    check_counts(record.estimator_counts, "estimator_counts", record.idx, s, path_);
  }
}

void Hdf5ResultSink::check(const PredictRecord& record) const {
  if (info_.kind != "predict") {
    DUALRS_THROW(IoError, "a predict record (example ", record.idx, ") was sent to the certify result file '", path_,
                 "'");
  }
  check_counts(record.counts, "counts", record.idx, info_.num_classes, path_);
}

void Hdf5ResultSink::write(const CertifyRecord& record) {
  check(record);
  certified_.push_back(record);
}

void Hdf5ResultSink::write(CertifyRecord&& record) {
  check(record);
  certified_.push_back(std::move(record));
}

void Hdf5ResultSink::write(const PredictRecord& record) {
  check(record);
  predicted_.push_back(record);
}

void Hdf5ResultSink::write(PredictRecord&& record) {
  check(record);
  predicted_.push_back(std::move(record));
}

void Hdf5ResultSink::finish() {
  if (finished_) return;
  const bool certify = info_.kind == "certify";
  if (certify) {
    sort_and_check_unique(certified_, path_);
  } else {
    sort_and_check_unique(predicted_, path_);
  }
  const std::string tmp = temporary_path(path_);
  try {
    {
      Hdf5File f(tmp, FileMode::kCreateTruncate);
      provenance_.finished_utc = utc_now();
      write_root_attributes(f, certify ? kCertifySchema : kPredictSchema, info_, provenance_);
      const auto k = static_cast<std::uint64_t>(info_.num_classes);
      if (certify) {
        write_certify_datasets(f, certified_, k);
        if (!info_.sigma_candidates.empty()) write_sigma_datasets(f, certified_, info_);
      } else {
        write_predict_datasets(f, predicted_, k);
      }
      write_completion_mark(f, provenance_);
      f.close();
    }
    publish_file(tmp, path_);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
  finished_ = true;
}

// --- TsvResultSink -------------------------------------------------------------------------

TsvResultSink::TsvResultSink(std::string path) : path_(std::move(path)) {}

TsvResultSink::~TsvResultSink() {
  if (!finished_) std::remove(temporary_path(path_).c_str());
}

void TsvResultSink::check_kind(bool predict) {
  if (has_records_ && predict != is_predict_) {
    DUALRS_THROW(IoError, "TSV result file '", path_, "' cannot mix certify and predict records");
  }
  has_records_ = true;
  is_predict_ = predict;
}

void TsvResultSink::write(const CertifyRecord& record) {
  check_kind(false);
  const std::string radius = format_decimal(record.radius);
  rows_.emplace_back(record.idx, std::to_string(record.idx) + '\t' + std::to_string(record.label) + '\t' +
                                     std::to_string(record.prediction) + '\t' + radius + '\t' +
                                     (record.correct() ? "1" : "0") + '\t' + format_timedelta(record.time_s) +
                                     '\n');
}

void TsvResultSink::write(const PredictRecord& record) {
  check_kind(true);
  rows_.emplace_back(record.idx, std::to_string(record.idx) + '\t' + std::to_string(record.label) + '\t' +
                                     std::to_string(record.prediction) + '\t' + (record.correct() ? "1" : "0") +
                                     '\t' + format_timedelta(record.time_s) + '\n');
}

void TsvResultSink::finish() {
  if (finished_) return;
  std::stable_sort(rows_.begin(), rows_.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 1; i < rows_.size(); ++i) {
    if (rows_[i].first == rows_[i - 1].first) {
      DUALRS_THROW(IoError, "duplicate example index ", rows_[i].first, " in the results for '", path_, "'");
    }
  }
  std::string text = is_predict_ ? "idx\tlabel\tpredict\tcorrect\ttime\n" : "idx\tlabel\tpredict\tradius\tcorrect\ttime\n";
  for (const auto& row : rows_) text += row.second;
  write_file_atomic(path_, text);
  finished_ = true;
}

// --- Reading -------------------------------------------------------------------------------

namespace {

/// Checks schema + version and reads the description and provenance attributes.
void read_result_header(const Hdf5File& f, const std::string& path, const char* expected_schema, ResultInfo& info,
                        nlohmann::json& provenance) {
  const std::string root = "/";
  if (!f.has_attr(root, "schema") || f.attr_dtype(root, "schema") != "string") {
    DUALRS_THROW(IoError, "'", path, "' is not a dualrs result file: no string root attribute 'schema'");
  }
  const std::string schema = f.attr_string(root, "schema");
  if (schema != expected_schema) {
    DUALRS_THROW(IoError, "'", path, "' has schema \"", schema, "\", expected \"", expected_schema, "\"");
  }
  if (!f.has_attr(root, "schema_version")) {
    DUALRS_THROW(IoError, "'", path, "' has no root attribute 'schema_version'");
  }
  const std::int64_t version = f.attr_int64(root, "schema_version");
  if (version != kSchemaVersion) {
    DUALRS_THROW(IoError, "'", path, "' has ", expected_schema, " schema_version ", version, ", this build reads ",
                 kSchemaVersion);
  }
  info.method = f.attr_string(root, "method");
  info.kind = f.attr_string(root, "kind");
  info.sigma = f.attr_double(root, "sigma");
  info.n0 = f.attr_int64(root, "n0");
  info.n = f.attr_int64(root, "n");
  info.alpha = f.attr_double(root, "alpha");
  info.num_classes = f.attr_int64(root, "num_classes");
  info.dataset = f.attr_string(root, "dataset");
  info.split = f.attr_string(root, "split");
  if (f.has_attr(root, "noise")) info.noise = f.attr_string(root, "noise");
  if (f.has_attr(root, "sampling")) info.sampling = f.attr_string(root, "sampling");
  if (f.has_attr(root, "streams")) info.streams = f.attr_string(root, "streams");
  if (f.has_attr(root, "sigma_candidates")) {
    info.sigma_candidates = f.attr_doubles(root, "sigma_candidates");
    info.sigma_e = f.attr_double(root, "sigma_e");
    info.alpha_e = f.attr_double(root, "alpha_e");
    info.alpha_c = f.attr_double(root, "alpha_c");
  }

  provenance = nlohmann::json::object();
  for (const std::string& name : f.attr_names(root)) {
    const std::string type = f.attr_dtype(root, name);
    nlohmann::json& v = provenance[name];
    if (type == "string") {
      const std::string text = f.attr_string(root, name);
      if (name == "config") {
        try {
          v = nlohmann::json::parse(text);
        } catch (const nlohmann::json::exception& e) {
          DUALRS_THROW(IoError, "'", path, "': root attribute 'config' is not valid JSON: ", e.what());
        }
      } else {
        v = text;
      }
    } else if (type.rfind("uint", 0) == 0) {
      v = f.attr_uint64(root, name);
    } else if (type.rfind("int", 0) == 0) {
      v = f.attr_int64(root, name);
    } else if (type.rfind("float", 0) == 0) {
      const std::vector<double> values = f.attr_doubles(root, name);
      v = values.size() == 1 ? nlohmann::json(values[0]) : nlohmann::json(values);
    } else {
      provenance.erase(name);  // not a string or number: not part of the provenance
    }
  }
}

/// Row `i` of a row-major [N, width] matrix.
Counts matrix_row(const std::vector<std::int64_t>& m, std::size_t i, std::size_t width) {
  return Counts(m.begin() + static_cast<std::ptrdiff_t>(i * width), m.begin() + static_cast<std::ptrdiff_t>((i + 1) * width));
}

/// `non_finite` [N], or zeros for files written before it existed.
std::vector<std::int64_t> read_non_finite(const Hdf5File& f, std::size_t n) {
  return f.exists("non_finite") ? f.read_int64("non_finite") : std::vector<std::int64_t>(n, 0);
}

}  // namespace

CertifyResults read_certify_results(const std::string& path) {
  Hdf5File f(path, FileMode::kReadOnly);
  CertifyResults out;
  read_result_header(f, path, kCertifySchema, out.info, out.provenance);
  const std::string root = "/";
  const bool per_sigma = !out.info.sigma_candidates.empty();

  const std::vector<std::int64_t> idx = f.read_int64("idx");
  const std::size_t n = idx.size();
  const auto k = static_cast<std::size_t>(out.info.num_classes);
  auto check_length = [&](const char* name, std::size_t got, std::size_t want) {
    if (got != want) {
      DUALRS_THROW(IoError, "dataset '", name, "' in '", path, "' has ", got, " values, expected ", want,
                   " (N = ", n, ", K = ", k, ")");
    }
  };
  const auto label = f.read_int64("label");
  const auto prediction = f.read_int64("prediction");
  const auto radius = f.read_float64("radius");
  const auto p_a_lower = f.read_float64("p_a_lower");
  const auto sigma = f.read_float64("sigma");
  const auto n_a = f.read_int64("n_a");
  const auto time_s = f.read_float64("time_s");
  const auto counts_selection = f.read_int64("counts_selection");
  const auto counts = f.read_int64("counts");
  const auto non_finite = read_non_finite(f, n);
  // Files written before n_used existed: -1 = not recorded.
  const auto n_used = f.exists("n_used") ? f.read_int64("n_used") : std::vector<std::int64_t>(n, -1);
  check_length("n_used", n_used.size(), n);
  check_length("non_finite", non_finite.size(), n);
  check_length("label", label.size(), n);
  check_length("prediction", prediction.size(), n);
  check_length("radius", radius.size(), n);
  check_length("p_a_lower", p_a_lower.size(), n);
  check_length("sigma", sigma.size(), n);
  check_length("n_a", n_a.size(), n);
  check_length("time_s", time_s.size(), n);
  check_length("counts_selection", counts_selection.size(), n * k);
  check_length("counts", counts.size(), n * k);

  std::vector<std::int64_t> sigma_index, est_sel, est, n_used_e;
  std::vector<double> r_sigma, r_c;
  const std::size_t s = out.info.sigma_candidates.size();
  if (per_sigma) {
    sigma_index = f.read_int64("sigma_index");
    r_sigma = f.read_float64("r_sigma");
    r_c = f.read_float64("r_c");
    check_length("sigma_index", sigma_index.size(), n);
    check_length("r_sigma", r_sigma.size(), n);
    check_length("r_c", r_c.size(), n);
    if (out.info.sigma_e > 0) {
      est_sel = f.read_int64("estimator_counts_selection");
      est = f.read_int64("estimator_counts");
      n_used_e = f.exists("n_used_estimator") ? f.read_int64("n_used_estimator") : std::vector<std::int64_t>(n, -1);
      check_length("n_used_estimator", n_used_e.size(), n);
      check_length("estimator_counts_selection", est_sel.size(), n * s);
      check_length("estimator_counts", est.size(), n * s);
    }
  }
  out.records.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    CertifyRecord& r = out.records[i];
    if (per_sigma) {
      r.sigma_index = sigma_index[i];
      r.r_sigma = r_sigma[i];
      r.r_c = r_c[i];
      if (!est.empty()) {
        r.estimator_counts_selection = matrix_row(est_sel, i, s);
        r.estimator_counts = matrix_row(est, i, s);
        r.n_used_estimator = n_used_e[i];
      }
    }
    r.idx = idx[i];
    r.label = label[i];
    r.prediction = prediction[i];
    r.radius = radius[i];
    r.p_a_lower = p_a_lower[i];
    r.sigma = sigma[i];
    r.n_a = n_a[i];
    r.time_s = time_s[i];
    r.non_finite = non_finite[i];
    r.n_used = n_used[i];
    r.counts_selection = matrix_row(counts_selection, i, k);
    r.counts = matrix_row(counts, i, k);
  }
  return out;
}

PredictResults read_predict_results(const std::string& path) {
  Hdf5File f(path, FileMode::kReadOnly);
  PredictResults out;
  read_result_header(f, path, kPredictSchema, out.info, out.provenance);
  const std::vector<std::int64_t> idx = f.read_int64("idx");
  const std::size_t n = idx.size();
  const auto k = static_cast<std::size_t>(out.info.num_classes);
  const auto label = f.read_int64("label");
  const auto prediction = f.read_int64("prediction");
  const auto p_value = f.read_float64("p_value");
  const auto time_s = f.read_float64("time_s");
  const auto counts = f.read_int64("counts");
  const auto non_finite = read_non_finite(f, n);
  for (const auto& [name, got, want] : {std::tuple<const char*, std::size_t, std::size_t>{"label", label.size(), n},
                                        {"prediction", prediction.size(), n}, {"p_value", p_value.size(), n},
                                        {"time_s", time_s.size(), n}, {"non_finite", non_finite.size(), n},
                                        {"counts", counts.size(), n * k}}) {
    if (got != want) {
      DUALRS_THROW(IoError, "dataset '", name, "' in '", path, "' has ", got, " values, expected ", want, " (N = ", n,
                   ", K = ", k, ")");
    }
  }
  out.records.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    PredictRecord& r = out.records[i];
    r.idx = idx[i];
    r.label = label[i];
    r.prediction = prediction[i];
    r.p_value = p_value[i];
    r.time_s = time_s[i];
    r.non_finite = non_finite[i];
    r.counts = matrix_row(counts, i, k);
  }
  return out;
}

std::string format_timedelta(double seconds) {
  // Python's timedelta(seconds=x): split off the whole seconds, round the fraction to
  // microseconds half-to-even (nearbyint in the default rounding mode), then print
  // "[D day[s], ]H:MM:SS[.ffffff]" with days floored (negative durations as Python does).
  constexpr double kMaxSeconds = 9.0e12;  // keeps microseconds within int64
  if (!std::isfinite(seconds) || std::fabs(seconds) > kMaxSeconds) {
    DUALRS_THROW(DataError, "format_timedelta: duration out of range: " + std::to_string(seconds));
  }
  double whole = 0.0;
  const double frac = std::modf(seconds, &whole);
  const std::int64_t total_us =
      static_cast<std::int64_t>(whole) * 1000000 + static_cast<std::int64_t>(std::nearbyint(frac * 1e6));
  constexpr std::int64_t kDayUs = 86400LL * 1000000;
  std::int64_t days = total_us / kDayUs;
  std::int64_t rest = total_us % kDayUs;
  if (rest < 0) {
    rest += kDayUs;
    days -= 1;
  }
  const std::int64_t us = rest % 1000000;
  const std::int64_t secs = rest / 1000000;
  char buf[96];
  int len = 0;
  if (days != 0) {
    len = std::snprintf(buf, sizeof(buf), "%" PRId64 " day%s, ", days, (days == 1 || days == -1) ? "" : "s");
  }
  len += std::snprintf(buf + len, sizeof(buf) - static_cast<std::size_t>(len), "%" PRId64 ":%02" PRId64 ":%02" PRId64,
                       secs / 3600, (secs / 60) % 60, secs % 60);
  if (us != 0) std::snprintf(buf + len, sizeof(buf) - static_cast<std::size_t>(len), ".%06" PRId64, us);
  return buf;
}

}  // namespace dualrs::io
