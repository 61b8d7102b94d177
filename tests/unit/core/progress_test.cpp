// The progress line: what reaches a log or a terminal under each verbosity. Every meter here
// prints on every update (interval 0) or never before finish (huge interval), so no assertion
// depends on timing.

#include "dualrs/core/progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace dualrs {
namespace {

// Everything written to a temporary stream.
class Capture {
 public:
  Capture() : file_(std::tmpfile()) {}
  ~Capture() { std::fclose(file_); }
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    std::rewind(file_);
    std::string out;
    for (int c; (c = std::fgetc(file_)) != EOF;) out += static_cast<char>(c);
    return out;
  }

 private:
  std::FILE* file_;
};

int count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

TEST(ProgressMeterTest, LogsGetPlainPeriodicLinesWithRateAndEta) {
  Capture out;
  {
    ProgressMeter meter("certify global_sigma_0.25", 4, "ex", Verbosity::kNormal, 0.0, out.file(), false);
    meter.update(1);
    meter.update(2);
    meter.finish();
  }
  const std::string text = out.text();
  EXPECT_EQ(text.find('\r'), std::string::npos) << text;
  EXPECT_EQ(text.find('\033'), std::string::npos) << text;
  EXPECT_EQ(count(text, "\n"), 3) << text;
  EXPECT_NE(text.find("certify global_sigma_0.25: 1/4 ex (25.0%)"), std::string::npos) << text;
  EXPECT_NE(text.find("ex/s, ETA "), std::string::npos) << text;
  EXPECT_NE(text.find("2/4 ex in "), std::string::npos) << text;
}

TEST(ProgressMeterTest, LogsGetNoLineBeforeTheIntervalHasPassed) {
  Capture out;
  {
    ProgressMeter meter("label", 100, "ex", Verbosity::kNormal, 1e9, out.file(), false);
    for (int i = 1; i <= 100; ++i) meter.update(i);
    meter.finish();
  }
  const std::string text = out.text();
  EXPECT_EQ(count(text, "\n"), 1) << text;
  EXPECT_NE(text.find("label: 100/100 ex in "), std::string::npos) << text;
}

TEST(ProgressMeterTest, QuietPrintsNothing) {
  Capture out;
  {
    ProgressMeter meter("label", 3, "ex", Verbosity::kQuiet, 0.0, out.file(), true);
    meter.update(1);
    meter.finish();
  }
  EXPECT_EQ(out.text(), "");
}

TEST(ProgressMeterTest, VerbosePrintsAStartLine) {
  Capture out;
  {
    ProgressMeter meter("estimate-sigma", 7, "ex", Verbosity::kVerbose, 1e9, out.file(), false);
    meter.finish();
  }
  const std::string text = out.text();
  EXPECT_EQ(text.rfind("estimate-sigma: 7 ex to do\n", 0), 0u) << text;
  EXPECT_EQ(count(text, "\n"), 2) << text;
}

TEST(ProgressMeterTest, TerminalLineIsRedrawnInPlaceAndEndsWithANewline) {
  Capture out;
  {
    ProgressMeter meter("label", 2, "ex", Verbosity::kNormal, 0.0, out.file(), true);
    meter.finish();
  }
  const std::string text = out.text();
  EXPECT_EQ(text.rfind("\r\033[K", 0), 0u) << text;
  EXPECT_EQ(count(text, "\n"), 1) << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST(ProgressMeterTest, AnUnfinishedTerminalLineIsClosedWhenTheMeterGoesAway) {
  Capture out;
  try {
    ProgressMeter meter("certify", 10, "ex", Verbosity::kNormal, 0.0, out.file(), true);
    meter.update(3);  // interval 0: drawn at once, without a newline
    throw std::runtime_error("model failed");
  } catch (const std::runtime_error&) {
  }
  const std::string text = out.text();
  EXPECT_EQ(text.rfind("\r\033[Kcertify: 3/10 ex (30.0%)", 0), 0u) << text;
  EXPECT_EQ(count(text, "\n"), 1) << text;
  EXPECT_EQ(text.back(), '\n') << text;
  EXPECT_EQ(text.find(" in "), std::string::npos) << "no final line: " << text;
}

TEST(ProgressMeterTest, IntervalComesFromTheEnvironment) {
  ::setenv("DUALRS_PROGRESS_INTERVAL", "12.5", 1);
  EXPECT_DOUBLE_EQ(default_progress_interval(Verbosity::kNormal), 12.5);
  ::setenv("DUALRS_PROGRESS_INTERVAL", "soon", 1);
  EXPECT_DOUBLE_EQ(default_progress_interval(Verbosity::kNormal), 30.0);
  ::unsetenv("DUALRS_PROGRESS_INTERVAL");
  EXPECT_DOUBLE_EQ(default_progress_interval(Verbosity::kNormal), 30.0);
  EXPECT_DOUBLE_EQ(default_progress_interval(Verbosity::kVerbose), 5.0);
}

TEST(FormatDurationTest, Ranges) {
  EXPECT_EQ(format_duration(12.34), "12.3s");
  EXPECT_EQ(format_duration(245), "4m05s");
  EXPECT_EQ(format_duration(3723), "1h02m03s");
  EXPECT_EQ(format_duration(-1), "?");
}

}  // namespace
}  // namespace dualrs
