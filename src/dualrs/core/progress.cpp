#include "dualrs/core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace dualrs {
inline namespace core {

std::string format_duration(double seconds) {
  char buf[64];
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  } else if (seconds < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(seconds / 60), static_cast<int>(seconds) % 60);
  } else {
    const int s = static_cast<int>(seconds);
    std::snprintf(buf, sizeof buf, "%dh%02dm%02ds", s / 3600, (s / 60) % 60, s % 60);
  }
  return buf;
}

double default_progress_interval(Verbosity verbosity) {
  if (const char* text = std::getenv("DUALRS_PROGRESS_INTERVAL")) {
    char* end = nullptr;
    const double value = std::strtod(text, &end);
    if (end != text && *end == '\0' && value > 0 && std::isfinite(value)) return value;
  }
  return verbosity == Verbosity::kVerbose ? 5.0 : 30.0;
}

ProgressMeter::ProgressMeter(std::string label, std::int64_t total, std::string unit, Verbosity verbosity,
                             double log_interval_s)
    : ProgressMeter(std::move(label), total, std::move(unit), verbosity, log_interval_s, stderr,
                    isatty(STDERR_FILENO) != 0) {}

ProgressMeter::ProgressMeter(std::string label, std::int64_t total, std::string unit, Verbosity verbosity,
                             double log_interval_s, std::FILE* stream, bool tty)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      verbosity_(verbosity),
      log_interval_s_(log_interval_s < 0 ? default_progress_interval(verbosity) : log_interval_s),
      stream_(stream),
      tty_(tty),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {
  if (verbosity_ == Verbosity::kVerbose) {
    std::fprintf(stream_, "%s: %lld %s to do\n", label_.c_str(), static_cast<long long>(total_), unit_.c_str());
    std::fflush(stream_);
  }
}

ProgressMeter::~ProgressMeter() {
  if (line_open_) {
    std::fputc('\n', stream_);
    std::fflush(stream_);
  }
}

void ProgressMeter::update(std::int64_t done) {
  done_ = done;
  if (verbosity_ == Verbosity::kQuiet) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (since >= (tty_ ? std::min(0.5, log_interval_s_) : log_interval_s_)) {
    last_print_ = now;
    print(false);
  }
}

void ProgressMeter::resume_from(std::int64_t done) {
  done_at_start_ = done;
  done_ = done;
}

void ProgressMeter::finish() {
  if (finished_) return;
  finished_ = true;
  if (verbosity_ != Verbosity::kQuiet) print(true);
}

void ProgressMeter::print(bool final_line) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_ - done_at_start_) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : NAN;
  const double pct = total_ > 0 ? 100.0 * static_cast<double>(done_) / static_cast<double>(total_) : 100.0;
  if (final_line) {
    std::fprintf(stream_, "%s%s: %lld/%lld %s in %s (%.2f %s/s)\n", tty_ ? "\r\033[K" : "", label_.c_str(),
                 static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(),
                 format_duration(elapsed).c_str(), rate, unit_.c_str());
    line_open_ = false;
  } else {
    std::fprintf(stream_, "%s%s: %lld/%lld %s (%.1f%%), %.2f %s/s, ETA %s%s", tty_ ? "\r\033[K" : "", label_.c_str(),
                 static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(), pct, rate,
                 unit_.c_str(), format_duration(eta).c_str(), tty_ ? "" : "\n");
    line_open_ = tty_;
  }
  std::fflush(stream_);
}

}  // namespace core
}  // namespace dualrs
