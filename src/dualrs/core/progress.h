#pragma once
/// \file
/// A progress line for long stages: items done / total, rate and ETA, on stderr.
/// On a terminal the line is redrawn in place at most every 0.5 s; otherwise (logs) one line
/// is written every `log_interval_s` seconds.

#include <chrono>
#include <cstdint>
#include <string>

namespace dualrs {

enum class Verbosity { kQuiet, kNormal, kVerbose };

class ProgressMeter {
 public:
  /// \param label  what is counted, e.g. "certify sigma=0.25"
  /// \param total  number of items (examples)
  /// \param unit   item name for the rate, e.g. "ex"
  ProgressMeter(std::string label, std::int64_t total, std::string unit, Verbosity verbosity = Verbosity::kNormal,
                double log_interval_s = 30.0);
  /// Records that `done` items are finished (monotone); prints when due.
  void update(std::int64_t done);
  /// Says that `done` items were finished before this run (a resumed job): they count in
  /// done / total but not in the rate and ETA. Call before the first update().
  void resume_from(std::int64_t done);
  /// Prints the final line (with total time).
  void finish();

 private:
  void print(bool final_line);
  std::string label_;
  std::int64_t total_;
  std::string unit_;
  Verbosity verbosity_;
  double log_interval_s_;
  bool tty_;
  std::int64_t done_ = 0;
  std::int64_t done_at_start_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
  bool finished_ = false;
};

/// "1h02m03s" / "4m05s" / "12.3s".
std::string format_duration(double seconds);

}  // namespace dualrs
