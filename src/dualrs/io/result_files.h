#pragma once
/// \file
/// Result files of `certify` and `predict`: HDF5 (layout in data_schemas/certify_results.h5.md)
/// and Cohen-compatible TSV (`idx label predict radius correct time`). Both sinks collect
/// records and publish the file atomically in `finish()`; a sink destroyed before `finish()`
/// leaves any earlier file at its path untouched and removes its temporary file.

#include <memory>
#include <utility>
#include <string>
#include <vector>

#include "dualrs/core/records.h"
#include "dualrs/io/provenance.h"

namespace dualrs::io {

/// Attributes that describe a result file besides provenance.
struct ResultInfo {
  std::string method;        ///< "global_sigma_0.25", "dual_rs", ...
  std::string kind;          ///< "certify" or "predict"
  double sigma = 0.0;        ///< global sigma (0 when not a single sigma)
  std::int64_t n0 = 0;
  std::int64_t n = 0;
  double alpha = 0.0;
  std::int64_t num_classes = 0;
  std::string dataset;       ///< dataset name
  std::string split;         ///< split the examples come from
  /// Σ for methods that choose σ per input (dual_rs, multiscale, routing); empty for global
  /// σ. When set, the file also holds `sigma_index`, `r_sigma`, `r_c` per example and the
  /// root attributes `sigma_candidates`, `sigma_e`, `alpha_e`, `alpha_c`; Dual RS files
  /// (sigma_e > 0) add `estimator_counts_selection` and `estimator_counts` [N, |Σ|].
  std::vector<double> sigma_candidates;
  double sigma_e = 0.0;      ///< estimator noise level (Dual RS), 0 otherwise
  double alpha_e = 0.0;      ///< estimator failure probability (Dual RS)
  double alpha_c = 0.0;      ///< classifier failure probability (Dual RS)
  /// Root attributes `noise` ("gaussian" | "grid") and `sampling` ("fixed" | "staged");
  /// files written before they existed read as gaussian / fixed.
  std::string noise = "gaussian";
  std::string sampling = "fixed";
  /// Root attribute `streams`, written only when not "global": "dual_rs_classifier" marks a
  /// global-σ file drawn on Dual RS's classifier streams at α_c (/certify/streams).
  std::string streams = "global";
};

/// HDF5 sink: writes `path` (schema "dualrs.certify" / "dualrs.predict" from `info.kind`,
/// version 1). Records are sorted by idx in `finish()`, which writes `<path>.tmp` and publishes
/// it (atomic_file.h) with `finished_utc` = now.
/// \throws IoError on a kind other than "certify"/"predict", a provenance schema that does not
/// match it, a record of the other kind, counts whose size is not `num_classes`, a duplicate
/// idx (in finish) or any HDF5/file-system failure (path and object named).
class Hdf5ResultSink : public ResultSink {
 public:
  Hdf5ResultSink(std::string path, ResultInfo info, Provenance provenance);
  ~Hdf5ResultSink() override;
  void write(const CertifyRecord& record) override;
  void write(const PredictRecord& record) override;
  /// The same, taking the record over instead of copying it (a merge of ImageNet results
  /// would otherwise hold every example's [K] counts twice).
  void write(CertifyRecord&& record);
  void write(PredictRecord&& record);
  void finish() override;

 private:
  void check(const CertifyRecord& record) const;
  void check(const PredictRecord& record) const;

  std::string path_;
  ResultInfo info_;
  Provenance provenance_;
  std::vector<CertifyRecord> certified_;
  std::vector<PredictRecord> predicted_;
  bool finished_ = false;
};

/// TSV sink in Cohen et al.'s format: header `idx\tlabel\tpredict\tradius\tcorrect\ttime`;
/// predict = -1 when abstaining; radius with 17 significant digits; correct 0/1; time as
/// H:MM:SS.ffffff (Python's str(timedelta)). For PREDICT files the columns are
/// `idx label predict correct time`, as in Cohen's predict.py. Rows are sorted by idx in
/// `finish()`; a file without records has the certify header only.
/// \throws IoError when certify and predict records are mixed, on a duplicate idx (in finish)
/// or when the file cannot be written.
class TsvResultSink : public ResultSink {
 public:
  explicit TsvResultSink(std::string path);
  ~TsvResultSink() override;
  void write(const CertifyRecord& record) override;
  void write(const PredictRecord& record) override;
  void finish() override;

 private:
  void check_kind(bool predict);

  std::string path_;
  std::vector<std::pair<std::int64_t, std::string>> rows_;  ///< (idx, line) in arrival order
  bool has_records_ = false;
  bool is_predict_ = false;
  bool finished_ = false;
};

/// A certification result file read back (for tables and tests).
struct CertifyResults {
  ResultInfo info;
  nlohmann::json provenance;           ///< root attributes, as JSON
  std::vector<CertifyRecord> records;  ///< sorted by idx as written
};

/// Reads a file written by Hdf5ResultSink with kind "certify".
/// \throws IoError naming the file (missing, not HDF5, wrong schema, missing dataset).
CertifyResults read_certify_results(const std::string& path);

/// A predict result file read back (merging shards, tests). Records carry no sigma_index
/// (predict files do not store it).
struct PredictResults {
  ResultInfo info;
  nlohmann::json provenance;
  std::vector<PredictRecord> records;  ///< sorted by idx as written
};

/// Reads a file written by Hdf5ResultSink with kind "predict". \throws IoError naming the file.
PredictResults read_predict_results(const std::string& path);

/// Python-style timedelta text for a duration in seconds, as str(datetime.timedelta(seconds=x)):
/// "0:00:01.234567", "0:00:00", "1:01:01.000001" (hours not padded; microseconds only when
/// non-zero, rounded half-to-even). \throws DataError on NaN/inf or |x| > 9e12.
std::string format_timedelta(double seconds);

}  // namespace dualrs::io
