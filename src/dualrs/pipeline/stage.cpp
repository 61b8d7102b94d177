#include "dualrs/pipeline/stage.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace dualrs::pipeline {

bool reads_dataset(const Stage& stage) {
  const std::vector<std::string> sections = stage.sections();
  return std::find(sections.begin(), sections.end(), "dataset") != sections.end();
}

void Stage::validate(const ExperimentConfig& config, const std::vector<std::string>& inputs,
                     std::vector<ConfigIssue>& issues) const {
  (void)config;
  (void)inputs;
  (void)issues;
}

const nlohmann::json& default_sections() {
  static const nlohmann::json defaults = {
      {"model", to_json(ModelConfig{})},
      {"train_base", to_json(TrainBaseConfig{})},
      {"train_denoiser", to_json(TrainDenoiserConfig{})},
      {"label", to_json(LabelConfig{})},
      {"train_estimator", to_json(train_estimator_preset(""))},
      {"estimate_sigma", to_json(EstimateSigmaConfig{})},
      {"finetune", to_json(FinetuneConfig{})},
      {"certify", to_json(CertifyConfig{})},
      {"predict", to_json(PredictConfig{})},
      {"table", to_json(TableConfig{})},
      {"plot", to_json(PlotConfig{})},
  };
  return defaults;
}

namespace {
std::string default_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) return format_decimal(value.get<double>());
  if (value.is_array()) {
    std::string out;
    for (const auto& item : value) out += (out.empty() ? "" : ",") + default_text(item);
    return out;
  }
  return value.dump();
}
}  // namespace

std::string flag_help(const Flag& flag) {
  std::string text = flag.help;
  if (flag.pointer.empty()) return text;
  const nlohmann::json::json_pointer pointer(flag.pointer);
  const nlohmann::json& defaults = default_sections();
  if (defaults.contains(pointer)) {
    const nlohmann::json& value = defaults.at(pointer);
    const std::string shown = default_text(value);
    // Empty strings and lists, and -1 sentinels, are "not set": the help says what then happens.
    if (!value.is_null() && !shown.empty() && !(value.is_number() && value.get<double>() == -1.0)) text += "; default " + shown;
  }
  return text + " (overrides " + flag.pointer + ")";
}

std::vector<double> parse_number_list(const std::string& text, const std::string& what) {
  // A list of radii or noise levels is short; 0:1:1e-9 would fill memory at 500 MB/s.
  constexpr std::size_t kMaxListLength = 10000;
  auto to_double = [&](const std::string& s) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != s.size()) throw ConfigError("command line", what, "not a number: '" + s + "'");
    if (!std::isfinite(v)) throw ConfigError("command line", what, "must be finite, got '" + s + "'");
    return v;
  };
  std::vector<double> out;
  if (text.find(':') != std::string::npos) {
    std::vector<std::string> parts;
    std::stringstream ss(text);
    for (std::string p; std::getline(ss, p, ':');) parts.push_back(p);
    if (parts.size() != 3) throw ConfigError("command line", what, "expected start:stop:step, got '" + text + "'");
    const double start = to_double(parts[0]), stop = to_double(parts[1]), step = to_double(parts[2]);
    if (!(step > 0) || stop < start) throw ConfigError("command line", what, "need step > 0 and stop >= start");
    if ((stop - start) / step >= static_cast<double>(kMaxListLength)) {
      throw ConfigError("command line", what, "'" + text + "' makes more than " + std::to_string(kMaxListLength) +
                                                  " values; use a larger step");
    }
    for (long i = 0; start + static_cast<double>(i) * step <= stop + 1e-9 * step; ++i) {
      out.push_back(start + static_cast<double>(i) * step);
    }
    return out;
  }
  std::stringstream ss(text);
  for (std::string p; std::getline(ss, p, ',');) {
    out.push_back(to_double(p));
    if (out.size() > kMaxListLength) {
      throw ConfigError("command line", what, "more than " + std::to_string(kMaxListLength) + " values");
    }
  }
  if (out.empty()) throw ConfigError("command line", what, "empty list");
  return out;
}

}  // namespace dualrs::pipeline
