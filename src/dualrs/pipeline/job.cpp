#include "dualrs/pipeline/job.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "dualrs/core/error.h"
#include "dualrs/core/progress.h"
#include "dualrs/dist/shard_runner.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/dir_lock.h"
#include "dualrs/io/provenance.h"
#include "dualrs/io/shard_files.h"
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

// The config sections a stage reads: its fingerprint covers these only, so editing one
// stage's section does not re-run stages before it.
json stage_sections(const Stage& stage, const json& doc) {
  json out = json::object();
  for (const auto& name : stage.sections()) {
    if (doc.contains(name)) out[name] = doc.at(name);
  }
  return out;
}

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
  for (std::size_t i = 0; i < job.at("stages").size(); ++i) {
    json stage = job["stages"][i];
    substitute_out(stage, out_dir);
    const std::string pointer = "/stages/" + std::to_string(i);
    try {
      auto config = ExperimentConfig::load(config_path, stage.value("set", json::object()), job_dir);
      const std::string command = stage.at("command").get<std::string>();
      const Stage& kind = stage_for(command, job_path, pointer + "/command");
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
      for (const auto& issue : stage_issues) {
        issues.push_back({issue.pointer == "/inputs" ? pointer + "/inputs" : pointer + " (" + config.source() + ") " + issue.pointer,
                          issue.pointer == "/inputs" ? issue.message : issue.message});
      }
      // A stage's fingerprint covers its own resolved config and every earlier stage's, so a
      // changed upstream stage re-runs everything after it.
      chain = io::sha256_hex(chain + s.command + stage_sections(kind, config.doc()).dump() + json(s.inputs).dump());
      s.fingerprint = chain;
      stages.push_back(std::move(s));
    } catch (const ConfigError& e) {
      for (const auto& issue : e.issues()) issues.push_back({pointer + " (" + e.source() + ") " + issue.pointer, issue.message});
    }
  }
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
    fs::rename(shards, moved);
  }
  io::ensure_directory(stage.dir);
  io::write_file_atomic(started_path(stage), json({{"name", stage.name}, {"fingerprint", stage.fingerprint},
                                                   {"started_utc", io::utc_now()}}).dump(2) + "\n");
  return moved;
}

}  // namespace

// The stage plan with each stage's model forward passes and, at the end, their totals.
void print_plan(std::ostream& os, const std::string& job, const std::string& out_dir, const std::vector<JobStage>& stages) {
  os << "job " << job << " -> " << out_dir << '\n';
  std::map<std::string, std::int64_t> totals;
  std::map<std::string, bool> unknown;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    os << "  " << i + 1 << ". " << stages[i].name << " (" << stages[i].command << ")"
              << (stage_done(stages[i]) ? " [up to date]" : "") << '\n';
    for (const ForwardPasses& p : stages[i].stage->plan(stages[i].config)) {
      os << "       " << describe(p) << '\n';
      const std::string key = p.model + (p.training ? " training" : "");
      totals[key] += p.total().value_or(0);
      unknown[key] = unknown[key] || !p.total();
    }
  }
  os << "  model forward passes in all (one noisy copy through one model = one pass):\n";
  for (const auto& [model, total] : totals) {
    os << "       " << model << ": " << group_thousands(total) << (unknown[model] ? " + unknown (data absent)" : "")
              << '\n';
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


void run_job(StageContext& ctx, const std::string& job_path, const std::string& out_dir, bool force) {
  std::vector<JobStage> stages;
  ctx.agreed([&] { stages = plan_job(job_path, out_dir); });
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
    });
    const auto start = std::chrono::steady_clock::now();
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
