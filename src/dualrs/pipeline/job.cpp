#include "dualrs/pipeline/job.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "dualrs/core/error.h"
#include "dualrs/core/progress.h"
#include "dualrs/dist/shard_runner.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/dir_lock.h"
#include "dualrs/io/provenance.h"
#include "dualrs/io/shard_files.h"
#include "dualrs/pipeline/dataset_index.h"
#include "dualrs/pipeline/registry.h"
#include "dualrs/report/certified_accuracy.h"

namespace dualrs::pipeline {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Replaces every "${out}" in the strings of `value`.
void substitute_out(json& value, const std::string& out) {
  if (value.is_string()) {
    std::string s = value.get<std::string>();
    for (std::size_t pos; (pos = s.find("${out}")) != std::string::npos;) s.replace(pos, 6, out);
    value = s;
  } else if (value.is_array() || value.is_object()) {
    for (auto& item : value) substitute_out(item, out);
  }
}

// A JSON pointer token: '~' and '/' escaped (RFC 6901).
std::string pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

// Every '$' in the strings of a stage entry (before substitution) must start "${out}", the one
// variable a job has: "${outdir}", "${out" and "$out" are reported with their key.
void check_variables(const json& value, const std::string& pointer, std::vector<ConfigIssue>& issues) {
  if (value.is_string()) {
    const std::string text = value.get<std::string>();
    for (std::size_t pos = text.find('$'); pos != std::string::npos; pos = text.find('$', pos + 1)) {
      if (text.compare(pos, 6, "${out}") == 0) continue;
      const std::size_t close = text.find('}', pos);
      if (pos + 1 < text.size() && text[pos + 1] == '{' && close != std::string::npos) {
        issues.push_back({pointer, "unknown variable '" + text.substr(pos, close - pos + 1) + "' in '" + text +
                                       "' (the only variable is ${out}, the folder given to --out)"});
      } else {
        issues.push_back({pointer, "malformed variable in '" + text + "' (write ${out} for the folder given to --out)"});
      }
      return;
    }
  } else if (value.is_object()) {
    for (const auto& [key, item] : value.items()) check_variables(item, pointer + "/" + pointer_token(key), issues);
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) check_variables(value[i], pointer + "/" + std::to_string(i), issues);
  }
}

// Every absolute path among the strings of `value` (a stage's `set` after substitution).
void collect_paths(const json& value, const std::string& pointer, std::vector<std::pair<std::string, std::string>>& out) {
  if (value.is_string()) {
    const std::string text = value.get<std::string>();
    if (!text.empty() && text.front() == '/') out.emplace_back(pointer, fs::path(text).lexically_normal().string());
  } else if (value.is_object()) {
    for (const auto& [key, item] : value.items()) collect_paths(item, pointer + "/" + pointer_token(key), out);
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) collect_paths(value[i], pointer + "/" + std::to_string(i), out);
  }
}

// True when `path` is `dir` or lies below it (lexically; both absolute and normal).
bool is_within(const std::string& path, const std::string& dir) {
  const fs::path rel = fs::path(path).lexically_relative(dir);
  return !rel.empty() && *rel.begin() != "..";
}

// The first component of `path` below `dir` ("" for dir itself).
std::string entry_below(const std::string& path, const std::string& dir) {
  const fs::path rel = fs::path(path).lexically_relative(dir);
  return rel.empty() || rel == "." ? std::string() : rel.begin()->string();
}

// Whether two stages writing into one folder would write the same file (Stage::outputs;
// "*" is the whole folder).
std::string shared_output(const Stage& a, const Stage& b) {
  const std::vector<std::string> x = a.outputs(), y = b.outputs();
  for (const std::string& f : x) {
    if (f == "*") return "the whole folder";
    for (const std::string& g : y) {
      if (g == "*") return "the whole folder";
      if (f == g) return f;
    }
  }
  return "";
}

// What a job can get wrong across its stages, before anything runs: two stages of one name,
// two stages writing the same files, a stage writing outside --out, a stage reading what only
// a later stage writes. `entries` are the manifest's stage entries after substitution.
void check_stage_layout(const std::vector<JobStage>& stages, const std::vector<std::size_t>& index, const json& entries,
                        const std::vector<std::string>& pointers, const std::string& out_dir,
                        std::vector<ConfigIssue>& issues) {
  for (std::size_t a = 0; a < stages.size(); ++a) {
    const std::string& pointer = pointers[index[a]];
    const json& entry = entries[index[a]];
    for (std::size_t b = 0; b < a; ++b) {
      const std::string other = "stage '" + stages[b].name + "' (" + pointers[index[b]] + ")";
      if (stages[a].name == stages[b].name) {
        issues.push_back({pointer + "/name", "'" + stages[a].name + "' is also the name of " + other +
                                                 "; stage names must be unique (they name folders and completion records)"});
      } else if (stages[a].dir == stages[b].dir) {
        const std::string shared = shared_output(*stages[a].stage, *stages[b].stage);
        if (!shared.empty()) {
          issues.push_back({pointer + "/out", "writes into " + stages[a].dir + " like " + other + ": both would write " +
                                                  shared + "; give one of them its own 'out'"});
        }
      }
    }
    if (!is_within(stages[a].dir, out_dir) && !entry.value("allow_out_outside", false)) {
      issues.push_back({pointer + "/out", "'" + stages[a].dir + "' is outside the job's output folder " + out_dir +
                                              " (set \"allow_out_outside\": true on the stage to allow it)"});
    }
    // What this stage reads: its inputs and the paths in its config patch.
    std::vector<std::pair<std::string, std::string>> reads;
    for (std::size_t i = 0; i < stages[a].inputs.size(); ++i) {
      reads.emplace_back(pointer + "/inputs/" + std::to_string(i), stages[a].inputs[i]);
    }
    if (entry.contains("set")) collect_paths(entry.at("set"), pointer + "/set", reads);
    for (const auto& [where, path] : reads) {
      // The stages that write `path`: those whose folder holds it, as one of their outputs
      // (or the folder itself, for a stage that reads a whole run).
      bool earlier = false;
      std::string later;
      for (std::size_t k = 0; k < stages.size(); ++k) {
        if (!is_within(path, stages[k].dir)) continue;
        const std::string entry_name = entry_below(path, stages[k].dir);
        const std::vector<std::string> outputs = stages[k].stage->outputs();
        const bool writes = entry_name.empty() || std::find(outputs.begin(), outputs.end(), "*") != outputs.end() ||
                            std::find(outputs.begin(), outputs.end(), entry_name) != outputs.end();
        if (!writes) continue;
        if (k < a || k == a) earlier = true;
        else if (later.empty()) later = "stage '" + stages[k].name + "' (" + pointers[index[k]] + ")";
      }
      if (!earlier && !later.empty()) {
        issues.push_back({where, "reads " + path + ", which only " + later + " writes, later in the job; put the "
                                 "stages in the order they feed each other"});
      }
    }
  }
}

// The config sections a stage reads: its fingerprint covers these only, so editing one
// stage's section does not re-run stages before it. /dual/rounds is the planner's (it decides
// which stages exist), so raising it re-runs only the stages it adds or rewires.
json stage_sections(const Stage& stage, const json& doc) {
  json out = json::object();
  for (const auto& name : stage.sections()) {
    if (doc.contains(name)) out[name] = doc.at(name);
  }
  if (out.contains("dual") && out["dual"].is_object()) out["dual"].erase("rounds");
  return out;
}

// Replaces every `from` in the strings of `value` by `to`.
void replace_in_strings(json& value, const std::string& from, const std::string& to) {
  if (value.is_string()) {
    std::string s = value.get<std::string>();
    for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
    value = s;
  } else if (value.is_structured()) {
    for (auto& item : value) replace_in_strings(item, from, to);
  }
}

bool mentions(const json& value, const std::string& text) { return value.dump().find(text) != std::string::npos; }

std::string folder(const std::string& name) { return "${out}/" + name + "/"; }

std::string round_name(const std::string& name, int round) {
  return round == 1 ? name : name + "_round" + std::to_string(round);
}
}  // namespace

json expand_rounds(const json& stages, int rounds, std::vector<std::string>& pointers) {
  pointers.clear();
  for (std::size_t i = 0; i < stages.size(); ++i) pointers.push_back("/stages/" + std::to_string(i));
  if (rounds <= 1) return stages;
  // The block of one round: the first label stage through the first finetune after it, with a
  // train-estimator and an estimate-sigma stage between them.
  const auto command_at = [&](std::size_t i) { return stages[i].value("command", std::string()); };
  std::size_t first = stages.size(), last = stages.size();
  for (std::size_t i = 0; i < stages.size() && first == stages.size(); ++i) {
    if (command_at(i) == "label") first = i;
  }
  for (std::size_t i = first; i < stages.size() && last == stages.size(); ++i) {
    if (command_at(i) == "finetune") last = i;
  }
  bool trains = false, estimates = false;
  for (std::size_t i = first; i < last && last < stages.size(); ++i) {
    trains = trains || command_at(i) == "train-estimator";
    estimates = estimates || command_at(i) == "estimate-sigma";
  }
  if (last == stages.size() || !trains || !estimates) {
    throw ConfigError("", "/dual/rounds",
                      "rounds = " + std::to_string(rounds) + " needs a job with a label, a train-estimator, an "
                      "estimate-sigma and then a finetune stage (the round that alternating training repeats)");
  }
  std::vector<std::string> block;
  for (std::size_t i = first; i <= last; ++i) block.push_back(stages[i].at("name").get<std::string>());
  const std::string tuned = block.back();
  // How later stages name the fine-tuned classifier (/model/checkpoint or /model/torchscript).
  std::string model_key = "checkpoint";
  for (std::size_t i = last + 1; i < stages.size(); ++i) {
    const json model = stages[i].value("set", json::object()).value("model", json::object());
    for (const char* key : {"checkpoint", "torchscript"}) {
      if (model.value(key, std::string()) == folder(tuned) + "model.pt") model_key = key;
    }
  }
  json out = json::array();
  std::vector<std::string> out_pointers;
  for (std::size_t i = 0; i <= last; ++i) {
    out.push_back(stages[i]);
    out_pointers.push_back(pointers[i]);
  }
  for (int r = 2; r <= rounds; ++r) {
    for (std::size_t i = first; i <= last; ++i) {
      json copy = stages[i];
      for (const std::string& b : block) replace_in_strings(copy, folder(b), folder(round_name(b, r)));
      copy["name"] = round_name(block[i - first], r);
      const std::string command = command_at(i);
      if (command == "label" || command == "finetune") {
        // This round labels with, and fine-tunes further, the classifier the round before fine-tuned.
        json& model = copy["set"]["model"];
        model.erase("checkpoint");
        model.erase("torchscript");
        model[model_key] = folder(round_name(tuned, r - 1)) + "model.pt";
      }
      out.push_back(std::move(copy));
      out_pointers.push_back(pointers[i] + " (round " + std::to_string(r) + ")");
    }
  }
  // Later stages on the fine-tuned classifier take the last round's classifier and estimator
  // (and σ estimates); the others, e.g. Dual RS off the shelf, keep round 1's.
  for (std::size_t i = last + 1; i < stages.size(); ++i) {
    json stage = stages[i];
    if (mentions(stage, folder(tuned))) {
      for (const std::string& b : block) replace_in_strings(stage, folder(b), folder(round_name(b, rounds)));
    }
    out.push_back(std::move(stage));
    out_pointers.push_back(pointers[i]);
  }
  pointers = std::move(out_pointers);
  return out;
}

namespace {

// Appends the problems of every section `config` holds that its JSON Schema cannot express
// (e.g. Σ not increasing, σ_e below max Σ). Keys a job usually fills in per stage (checkpoints,
// the labels and estimates files) are not required here.
void config_issues(const ExperimentConfig& config, std::vector<ConfigIssue>& issues) {
  auto check = [&](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const ConfigError& e) {
      issues.insert(issues.end(), e.issues().begin(), e.issues().end());
    }
  };
  if (config.has("dataset")) check([&] { config.dataset(); });
  if (config.has("model")) check([&] { config.model(); });
  if (config.has("train_base")) check([&] { config.train_base(); });
  if (config.has("dual")) check([&] { config.dual(); });
  std::optional<Method> certify_method, predict_method;
  check([&] { certify_method = config.certify().method; });
  check([&] { predict_method = config.predict().method; });
  if (config.has("label")) check([&] { config.label(); });
  if (config.has("estimate_sigma")) check([&] { config.estimate_sigma(); });
  if (config.has("train_estimator")) check([&] { config.train_estimator(); });
  for (const auto& [section, method] : {std::pair<const char*, std::optional<Method>>{"certify", certify_method},
                                        {"predict", predict_method}}) {
    if (method && *method != Method::kGlobal && !config.has("dual")) {
      issues.push_back({std::string("/") + section + "/method",
                        "method '" + to_string(*method) + "' needs a /dual section (sigma_candidates, sigma_e, estimator)"});
    }
  }
  check([&] { report::table_radii(config.table()); });
  check([&] { config.plot(); });
}

}  // namespace


namespace {

// What the schema cannot say about a stage's `slurm` section.
void check_slurm_section(const Stage& stage, const json& slurm, const std::string& pointer,
                         std::vector<ConfigIssue>& issues) {
  const std::string command = stage.name();
  if (slurm.contains("array") && !stage.traits().sharded) {
    issues.push_back({pointer + "/array", "only sharded stages (label, estimate-sigma, certify, predict) can run as an array, not " + command});
  }
  if (slurm.contains("array_max_running") && !slurm.contains("array")) {
    issues.push_back({pointer + "/array_max_running", "needs /array"});
  }
  if (slurm.contains("gpus_per_task") && stage.traits().training) {
    issues.push_back({pointer + "/gpus_per_task", "training stages take gpus_per_node: per-task GPU isolation can break "
                                                  "CUDA IPC between the ranks of one node (docs/cluster.md §6)"});
  }
}

}  // namespace

std::vector<JobStage> plan_job(const std::string& job_path, const std::string& out_dir) {
  const json job = read_json_file(job_path);
  validate_schema(job, SchemaKind::kJob, job_path);
  const std::string job_dir = fs::absolute(job_path).parent_path().string();
  const std::string config_path = (fs::path(job_dir) / job.at("config").get<std::string>()).lexically_normal().string();
  std::vector<JobStage> stages;
  std::vector<ConfigIssue> issues;
  std::string chain;
  json entries = json::array();  // the stage entries with ${out} substituted
  std::vector<std::size_t> index;  // of each planned stage in the manifest
  // /dual/rounds of the job's config: the planner repeats the training round (expand_rounds).
  std::vector<std::string> pointers;
  json planned;
  try {
    const json doc = ExperimentConfig::load(config_path).doc();
    const int rounds = doc.contains("dual") ? doc.at("dual").value("rounds", 1) : 1;
    planned = expand_rounds(job.at("stages"), rounds, pointers);
  } catch (const ConfigError& e) {
    std::vector<ConfigIssue> config_problems;
    for (const auto& issue : e.issues()) config_problems.push_back({"(" + config_path + ") " + issue.pointer, issue.message});
    throw ConfigError(job_path, std::move(config_problems));
  }
  for (std::size_t i = 0; i < planned.size(); ++i) {
    json stage = planned[i];
    const std::string& pointer = pointers[i];
    check_variables(stage, pointer, issues);
    substitute_out(stage, out_dir);
    entries.push_back(stage);
    try {
      auto config = ExperimentConfig::load(config_path, stage.value("set", json::object()), job_dir);
      const std::string command = stage.at("command").get<std::string>();
      const std::string command_pointer = pointer + "/command";
      const Stage& kind = stage_for(command, job_path, command_pointer);
      JobStage s{stage.at("name").get<std::string>(), command, &kind, config, {}, "", "", stage.value("slurm", json::object())};
      check_slurm_section(kind, s.slurm, pointer + "/slurm", issues);
      for (const auto& input : stage.value("inputs", json::array())) {
        s.inputs.push_back((fs::path(job_dir) / input.get<std::string>()).lexically_normal().string());
      }
      s.dir = stage.contains("out") ? fs::absolute(stage["out"].get<std::string>()).lexically_normal().string()
                                    : (fs::path(out_dir) / s.name).string();
      // Parse the sections the stage needs now, so every problem shows before any work.
      std::vector<ConfigIssue> stage_issues;
      collect_issues(stage_issues, [&] { config.denoiser(); });
      kind.validate(config, s.inputs, stage_issues);
      // A stage's own keys (/inputs) are named in the job; config keys in the stage's config.
      for (const auto& issue : stage_issues) {
        const std::string where =
            issue.pointer == "/inputs" ? pointer + "/inputs" : pointer + " (" + config.source() + ") " + issue.pointer;
        issues.push_back({where, issue.message});
      }
      // A stage's fingerprint covers its own resolved config and every earlier stage's, so a
      // changed upstream stage re-runs everything after it.
      chain = io::sha256_hex(chain + s.command + stage_sections(kind, config.doc()).dump() + json(s.inputs).dump());
      s.fingerprint = chain;
      stages.push_back(std::move(s));
      index.push_back(i);
    } catch (const ConfigError& e) {
      for (const auto& issue : e.issues()) issues.push_back({pointer + " (" + e.source() + ") " + issue.pointer, issue.message});
    }
  }
  check_stage_layout(stages, index, entries, pointers, out_dir, issues);
  if (!issues.empty()) throw ConfigError(job_path, std::move(issues));
  return stages;
}

// A stage's completion record: written when it succeeds, compared by fingerprint.
std::string record_path(const JobStage& stage) { return (fs::path(stage.dir) / ("stage-" + stage.name + ".json")).string(); }

bool stage_done(const JobStage& stage) {
  const fs::path marker = record_path(stage);
  if (!fs::exists(marker)) return false;
  try {
    return read_json_file(marker.string()).value("fingerprint", "") == stage.fingerprint;
  } catch (const Error&) {
    return false;
  }
}

namespace {

// Written when a stage starts: shards under the stage folder are resumable only while the
// stage's fingerprint is still the one recorded here.
std::string started_path(const JobStage& stage) {
  return (fs::path(stage.dir) / ("stage-" + stage.name + ".started.json")).string();
}

// Before a stage runs: shards left by another version of it (its config or an earlier
// stage changed, or --force) are moved aside to shards.stale-<UTC time>/, never reused or
// deleted; shards of an interrupted run of this very version stay, and the stage resumes.
// Returns the folder they were moved to, or "".
std::string set_aside_stale_shards(const JobStage& stage, bool force) {
  const fs::path shards = fs::path(stage.dir) / "shards";
  std::string recorded;
  if (fs::exists(started_path(stage))) {
    try {
      recorded = read_json_file(started_path(stage)).value("fingerprint", "");
    } catch (const Error&) {
      recorded.clear();
    }
  }
  std::string moved;
  // A folder locked by a running job is left alone: the stage reports the lock.
  if (fs::is_directory(shards) && !fs::exists(fs::path(stage.dir) / "dualrs.lock") &&
      (force || recorded != stage.fingerprint)) {
    std::string stamp = io::utc_now();
    stamp.erase(std::remove(stamp.begin(), stamp.end(), ':'), stamp.end());
    moved = (fs::path(stage.dir) / ("shards.stale-" + stamp)).string();
    // Two set-asides within one second get -2, -3, ...: a rename never lands on an older one.
    for (int n = 2; fs::exists(moved); ++n) {
      moved = (fs::path(stage.dir) / ("shards.stale-" + stamp + "-" + std::to_string(n))).string();
    }
    fs::rename(shards, moved);
  }
  io::ensure_directory(stage.dir);
  io::write_file_atomic(started_path(stage), json({{"name", stage.name}, {"fingerprint", stage.fingerprint},
                                                   {"started_utc", io::utc_now()}}).dump(2) + "\n");
  return moved;
}

// With --force: a training stage's train_state.json, which would let it continue its last
// run (training_run.h), is moved aside to train_state.stale-<UTC time>.json, so the stage
// starts at epoch 1. Returns where it went, or "".
std::string set_aside_training_state(const JobStage& stage) {
  const fs::path state = fs::path(stage.dir) / "train_state.json";
  if (!fs::exists(state)) return "";
  std::string stamp = io::utc_now();
  stamp.erase(std::remove(stamp.begin(), stamp.end(), ':'), stamp.end());
  const std::string moved = (fs::path(stage.dir) / ("train_state.stale-" + stamp + ".json")).string();
  fs::rename(state, moved);
  return moved;
}

}  // namespace

// The stage plan with each stage's model forward passes and, at the end, their totals.
namespace {

// 4000.5 s -> "1 h 06 min 40 s"; 12.3 s -> "12.3 s".
std::string format_duration(double seconds) {
  std::ostringstream os;
  if (seconds < 60) {
    os.setf(std::ios::fixed);
    os.precision(1);
    os << seconds << " s";
    return os.str();
  }
  const auto total = static_cast<std::int64_t>(seconds + 0.5);
  const std::int64_t h = total / 3600, m = total % 3600 / 60, s = total % 60;
  char buffer[64];
  if (h > 0) {
    std::snprintf(buffer, sizeof buffer, "%lld h %02lld min %02lld s", static_cast<long long>(h), static_cast<long long>(m),
                  static_cast<long long>(s));
  } else {
    std::snprintf(buffer, sizeof buffer, "%lld min %02lld s", static_cast<long long>(m), static_cast<long long>(s));
  }
  return buffer;
}

std::string format_hours(double hours) {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(hours < 1 ? 4 : 1);
  os << hours;
  return os.str();
}

// "projected: 1 min 02 s on 4 ranks = 0.0689 device-hours (+ unmeasured: denoiser)"
std::string projection_line(const Projection& p, int ranks) {
  std::string line = "projected: " + format_duration(p.seconds) + " on " + std::to_string(ranks) +
                     (ranks == 1 ? " rank" : " ranks") + " = " + format_hours(p.device_hours) + " device-hours";
  if (!p.unmeasured.empty()) {
    line += " (+ unmeasured:";
    for (const std::string& m : p.unmeasured) line += " " + m;
    line += ")";
  }
  if (p.unknown_examples) line += " (+ passes of unknown count: data absent)";
  return line;
}

}  // namespace

void print_plan(std::ostream& os, const std::string& job, const std::string& out_dir, const std::vector<JobStage>& stages,
                const PlanLimits& limits, const PlanCost& cost) {
  os << "job " << job << " -> " << out_dir << '\n';
  if (cost.calibration != nullptr) {
    const Calibration& c = *cost.calibration;
    os << "  calibration " << cost.calibration_path << ": " << c.device << " (" << c.device_name << "), " << c.threads
       << " threads, measured " << c.created_utc << " with " << c.config_source << '\n';
    std::vector<std::string> seen;
    for (const JobStage& stage : stages) {
      for (const std::string& line : calibration_mismatches(stage.config, c)) {
        if (std::find(seen.begin(), seen.end(), line) != seen.end()) continue;
        seen.push_back(line);
        os << "  warning: calibration " << cost.calibration_path << ": " << line << '\n';
      }
    }
  }
  std::map<std::string, std::int64_t> totals;
  std::map<std::string, bool> unknown;
  double seconds = 0, pending_seconds = 0;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const bool done = stage_done(stages[i]);
    os << "  " << i + 1 << ". " << stages[i].name << " (" << stages[i].command << ")" << (done ? " [up to date]" : "")
       << '\n';
    const std::vector<ForwardPasses> passes = stages[i].stage->plan(stages[i].config);
    const PlanCheck check = check_plan(passes, limits);
    if (check.exceeds) {
      os << "       refused unless --allow-huge: " << group_thousands(check.total) << " forward passes exceed the ceiling of "
         << group_thousands(limits.max_forward_passes) << " (--max-forwards)\n";
    }
    for (const ForwardPasses& p : passes) {
      os << "       " << describe(p) << '\n';
      const std::string key = p.model + (p.training ? " training" : "");
      totals[key] += p.total().value_or(0);
      unknown[key] = unknown[key] || !p.total();
    }
    if (cost.calibration != nullptr && !passes.empty()) {
      const Projection p = project(passes, *cost.calibration, cost.ranks);
      os << "       " << projection_line(p, cost.ranks) << '\n';
      seconds += p.seconds;
      if (!done) pending_seconds += p.seconds;
    }
  }
  os << "  model forward passes in all (one noisy copy through one model = one pass):\n";
  for (const auto& [model, total] : totals) {
    os << "       " << model << ": " << group_thousands(total) << (unknown[model] ? " + unknown (data absent)" : "")
              << '\n';
  }
  if (cost.calibration != nullptr) {
    const double k = std::max(1, cost.ranks);
    os << "  projected in all: " << format_duration(seconds) << " on " << cost.ranks << (cost.ranks == 1 ? " rank" : " ranks")
       << " = " << format_hours(seconds * k / 3600) << " device-hours; stages not yet done: "
       << format_duration(pending_seconds) << " = " << format_hours(pending_seconds * k / 3600)
       << " device-hours (model forward passes only, at the calibration's rates; start-up, noise, "
          "input and merges come on top)\n";
  }
}

namespace {

// The command line that runs one stage on its own: `dualrs <command> --config <resolved>
// --out <dir> [inputs...]` (analyze reads no config).
std::vector<std::string> stage_argv(const JobStage& stage, const std::string& config_file) {
  std::vector<std::string> argv{stage.command};
  if (stage.stage->traits().config != ConfigUse::kNone) argv.insert(argv.end(), {"--config", config_file});
  argv.insert(argv.end(), {"--out", stage.dir});
  argv.insert(argv.end(), stage.inputs.begin(), stage.inputs.end());
  return argv;
}

// A plan field: tabs and line breaks would split it.
const std::string& plan_field(const std::string& value, const std::string& what) {
  if (value.find_first_of("\t\n\r") != std::string::npos) {
    throw ConfigError("plan", what, "contains a tab or line break, which the plan cannot carry: '" + value + "'");
  }
  return value;
}

}  // namespace

// Writes the plan slurm/submit turns into sbatch jobs (data_schemas/slurm_plan.md): per stage
// its resolved config, the completion record to publish when it succeeds, and one line of
// plan.tsv, so the Slurm side runs exactly what was resolved here and never re-reads the job
// manifest.
void emit_plan(const std::vector<JobStage>& stages, const std::string& plan_dir, Rerun rerun) {
  io::ensure_directory(plan_dir);
  std::string tsv = "#index\tname\tcommand\tstatus\tdir\trecord\trecord_to\tslurm\targv...\n";
  const std::string planned = io::utc_now();
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const JobStage& stage = stages[i];
    const std::string number = std::to_string(i + 1);
    const fs::path base = fs::path(plan_dir) / (std::string(number.size() < 2 ? "0" : "") + number + "-" + stage.name);
    const std::string config_file = base.string() + ".config.json";
    const std::string record_file = base.string() + ".stage.json";
    io::write_file_atomic(config_file, stage.config.doc().dump(2) + "\n");
    io::write_file_atomic(record_file, json({{"name", stage.name}, {"command", stage.command},
                                             {"fingerprint", stage.fingerprint}, {"planned_utc", planned},
                                             {"runner", "slurm/submit"}}).dump(2) + "\n");
    std::string slurm;
    for (const auto& [key, value] : stage.slurm.items()) {
      slurm += (slurm.empty() ? "" : ",") + key + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
    }
    const std::string what = "/stages/" + std::to_string(i);
    const bool done = rerun == Rerun::kSkipDone && stage_done(stage);
    std::vector<std::string> fields{std::to_string(i + 1), stage.name, stage.command, done ? "done" : "pending",
                                    stage.dir, record_file, record_path(stage), slurm.empty() ? "-" : slurm};
    for (auto& arg : stage_argv(stage, config_file)) fields.push_back(std::move(arg));
    for (std::size_t f = 0; f < fields.size(); ++f) {
      tsv += (f ? "\t" : "") + plan_field(fields[f], what);
    }
    tsv += '\n';
  }
  io::write_file_atomic((fs::path(plan_dir) / "plan.tsv").string(), tsv);
}


void announce_plan(StageContext& ctx, const std::string& name, const Stage& stage, const ExperimentConfig& config,
                   const PlanLimits& limits) {
  std::vector<ForwardPasses> passes;
  ctx.agreed([&] {
    passes = stage.plan(config);
    const PlanCheck check = check_plan(passes, limits);
    if (check.exceeds && !limits.allow_huge) {
      throw ConfigError(config.source(), "", name + ": the plan has " + group_thousands(check.total) +
                                                 " model forward passes, more than the ceiling of " +
                                                 group_thousands(limits.max_forward_passes) +
                                                 " (is n or the selection what you meant? 'dualrs run JOB --dry-run' "
                                                 "shows the plan); --allow-huge runs it anyway, --max-forwards "
                                                 "sets the ceiling");
    }
  });
  ctx.plan_lines.clear();
  for (const ForwardPasses& p : passes) ctx.plan_lines.push_back(name + ": plan: " + describe(p));
  if (stage.traits().sharded) return;  // printed once the stage holds its folder's lock
  for (const std::string& line : ctx.plan_lines) say(ctx, "%s", line.c_str());
  ctx.plan_lines.clear();
}

void run_job(StageContext& ctx, const std::string& job_path, const std::string& out_dir, bool force,
             const PlanLimits& limits) {
  std::vector<JobStage> stages;
  ctx.agreed([&] { stages = plan_job(job_path, out_dir); });
  // The file index of each dataset the stages read (docs/cluster.md §8b), before anything
  // counts its examples: the plans below do, on every rank.
  std::set<std::string> indexed;
  for (const JobStage& stage : stages) {
    if (reads_dataset(*stage.stage) && stage.config.has("dataset") &&
        indexed.insert(stage.config.doc().at("dataset").dump()).second) {
      prepare_dataset_index(ctx, stage.config, out_dir);
    }
  }
  ctx.agreed([&] {
    // Every stage's plan against the ceiling before the first one starts.
    std::vector<ConfigIssue> issues;
    for (std::size_t i = 0; i < stages.size(); ++i) {
      const PlanCheck check = check_plan(stages[i].stage->plan(stages[i].config), limits);
      if (check.exceeds && !limits.allow_huge) {
        issues.push_back({"/stages/" + std::to_string(i), stages[i].name + ": " + group_thousands(check.total) +
                                                              " model forward passes, more than the ceiling of " +
                                                              group_thousands(limits.max_forward_passes) +
                                                              " (see --dry-run; --allow-huge runs it anyway)"});
      }
    }
    if (!issues.empty()) throw ConfigError(job_path, std::move(issues));
  });
  const auto job_start = std::chrono::steady_clock::now();
  json summary = {{"job", job_path}, {"out", out_dir}, {"started_utc", io::utc_now()},
                  {"world_size", ctx.world.size}, {"stages", json::array()}};
  ctx.on_root([&] { io::ensure_directory(out_dir); });
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const JobStage& stage = stages[i];
    // A stop request that came during an earlier stage ends the job here; re-running resumes.
    if (ctx.comm.any_of(ctx.signals.stop_requested())) {
      say(ctx, "[%zu/%zu] stopped on request before %s; run the same command again to go on", i + 1, stages.size(),
          stage.name.c_str());
      throw dist::Preempted("job stopped on request");
    }
    // Rank 0 decides what is up to date, so every rank sees the same answer.
    std::int64_t done = 0;
    ctx.on_root([&] { done = !force && stage_done(stage) ? 1 : 0; });
    ctx.comm.broadcast(&done, sizeof done, 0);
    if (done) {
      say(ctx, "[%zu/%zu] %s: up to date, skipped", i + 1, stages.size(), stage.name.c_str());
      summary["stages"].push_back({{"name", stage.name}, {"skipped", true}});
      continue;
    }
    say(ctx, "[%zu/%zu] %s (%s)", i + 1, stages.size(), stage.name.c_str(), stage.command.c_str());
    ctx.on_root([&] {
      const std::string moved = set_aside_stale_shards(stage, force > 0);
      if (!moved.empty()) say(ctx, "[%zu/%zu] %s: shards of an earlier version of this stage moved to %s", i + 1,
                              stages.size(), stage.name.c_str(), moved.c_str());
      const std::string state = force > 0 ? set_aside_training_state(stage) : "";
      if (!state.empty()) say(ctx, "[%zu/%zu] %s: training state moved to %s (--force)", i + 1, stages.size(),
                              stage.name.c_str(), state.c_str());
    });
    const auto start = std::chrono::steady_clock::now();
    announce_plan(ctx, stage.name, *stage.stage, stage.config, limits);
    stage.stage->run(ctx, StageRun{stage.config, stage.inputs, stage.dir, {}});
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ctx.on_root([&] {
      io::ensure_directory(stage.dir);
      io::write_file_atomic(record_path(stage),
                            json({{"name", stage.name}, {"command", stage.command}, {"fingerprint", stage.fingerprint},
                                  {"seconds", seconds}, {"world_size", ctx.world.size}, {"finished_utc", io::utc_now()}})
                                    .dump(2) + "\n");
    });
    summary["stages"].push_back({{"name", stage.name}, {"seconds", seconds}});
    say(ctx, "[%zu/%zu] %s done in %s", i + 1, stages.size(), stage.name.c_str(), format_duration(seconds).c_str());
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - job_start).count();
  summary["seconds"] = total;
  summary["finished_utc"] = io::utc_now();
  ctx.on_root([&] { io::write_file_atomic((fs::path(out_dir) / "job_summary.json").string(), summary.dump(2) + "\n"); });
  say(ctx, "job finished in %s; outputs in %s", format_duration(total).c_str(), out_dir.c_str());
}

std::string validate_file(const std::string& path) {
    const json doc = read_json_file(path);
    if (doc.is_object() && doc.contains("stages")) {
      validate_schema(doc, SchemaKind::kJob, path);
      const std::string config = (fs::absolute(path).parent_path() / doc.at("config").get<std::string>()).string();
      std::vector<ConfigIssue> issues;
      try {
        config_issues(ExperimentConfig::load(config), issues);
      } catch (const ConfigError& e) {
        for (const auto& issue : e.issues()) issues.push_back({"/config (" + e.source() + ") " + issue.pointer, issue.message});
      }
      if (!issues.empty()) throw ConfigError(path, std::move(issues));
      plan_job(path, fs::absolute("dualrs-validate-out").string());
      return path + ": valid job";
    } else {
      const ExperimentConfig config = ExperimentConfig::load(path);
      std::vector<ConfigIssue> issues;
      config_issues(config, issues);
      if (!issues.empty()) throw ConfigError(path, std::move(issues));
      return path + ": valid config";
    }
}

}  // namespace dualrs::pipeline
