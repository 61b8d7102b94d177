#pragma once
/// \file
/// A progress line for long stages: items done / total, percentage, rate and ETA, on stderr.
/// - On a terminal the line is redrawn in place (`\r`) at most every 0.5 s (or the log interval
///   when shorter), and ends with a newline when the stage finishes (or when the meter is
///   destroyed early, e.g. by an error).
/// - Otherwise (logs, Slurm output files) nothing is redrawn: one plain line is written every
///   `log_interval_s` seconds, plus the final line.
/// - Verbosity::kQuiet prints nothing; kVerbose also prints a start line and, in logs, a line
///   every 5 s by default.
/// The log interval defaults to $DUALRS_PROGRESS_INTERVAL (seconds, > 0) when set, else 30 s.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace dualrs {
inline namespace core {

/// How much a command prints to stderr: kQuiet (errors only), kNormal, kVerbose.
enum class Verbosity { kQuiet, kNormal, kVerbose };

class ProgressMeter {
 public:
  /// Default for `log_interval_s`: $DUALRS_PROGRESS_INTERVAL, else 30 s (5 s when verbose).
  static constexpr double kDefaultInterval = -1.0;

  /// \param label  what is counted, e.g. "certify global_sigma_0.25"
  /// \param total  number of items (examples)
  /// \param unit   item name for the rate, e.g. "ex"
  /// \param log_interval_s  seconds between lines when stderr is not a terminal
  ProgressMeter(std::string label, std::int64_t total, std::string unit, Verbosity verbosity = Verbosity::kNormal,
                double log_interval_s = kDefaultInterval);
  /// The same, writing to `stream`, which is treated as a terminal when `tty` (for tests).
  ProgressMeter(std::string label, std::int64_t total, std::string unit, Verbosity verbosity, double log_interval_s,
                std::FILE* stream, bool tty);
  /// Ends a half-drawn terminal line with a newline, so an error message starts on its own line.
  ~ProgressMeter();
  ProgressMeter(const ProgressMeter&) = delete;
  ProgressMeter& operator=(const ProgressMeter&) = delete;

  /// Records that `done` items are finished (monotone); prints when due.
  void update(std::int64_t done);
  /// Says that `done` items were finished before this run (a resumed job): they count in
  /// done / total but not in the rate and ETA. Call before the first update().
  void resume_from(std::int64_t done);
  /// Prints the final line (items, total time, rate). Later calls do nothing.
  void finish();

 private:
  void print(bool final_line);
  std::string label_;
  std::int64_t total_;
  std::string unit_;
  Verbosity verbosity_;
  double log_interval_s_;
  std::FILE* stream_;
  bool tty_;
  bool line_open_ = false;  ///< a terminal line was drawn without its newline
  std::int64_t done_ = 0;
  std::int64_t done_at_start_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
  bool finished_ = false;
};

/// "1h02m03s" / "4m05s" / "12.3s"; "?" for a negative or non-finite value.
std::string format_duration(double seconds);

/// The log interval in seconds a meter uses when given kDefaultInterval: $DUALRS_PROGRESS_INTERVAL
/// when it is a number > 0, else 30 (5 when verbose).
double default_progress_interval(Verbosity verbosity);

}  // namespace core
}  // namespace dualrs
