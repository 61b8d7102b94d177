// dualrs run: executes a job manifest's stages in order on this allocation.

#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include "common.h"
#include "dualrs/core/error.h"
#include "dualrs/dist/shard_runner.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/dir_lock.h"
#include "dualrs/io/provenance.h"
#include "dualrs/io/shard_files.h"
#include "dualrs/report/certified_accuracy.h"
#include "dualrs/smooth/certify.h"
#include "stage_plan.h"

namespace dualrs::app {
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

// The config sections a command reads: a stage's fingerprint covers these only, so editing
// one stage's section does not re-run stages before it.
json stage_sections(const std::string& command, const json& doc) {
  static const std::map<std::string, std::vector<std::string>> sections = {
      {"train-denoiser", {"dataset", "dual", "denoiser", "train_denoiser"}},
      {"train-base", {"dataset", "model", "train_base", "denoiser"}},
      {"label", {"dataset", "model", "dual", "label", "denoiser"}},
      {"train-estimator", {"dataset", "dual", "label", "train_estimator", "denoiser"}},
      {"estimate-sigma", {"dataset", "dual", "estimate_sigma", "denoiser"}},
      {"finetune", {"dataset", "model", "dual", "finetune", "denoiser"}},
      {"certify", {"dataset", "model", "dual", "certify", "denoiser"}},
      {"predict", {"dataset", "model", "dual", "predict", "denoiser"}},
      {"table", {"table"}},
      {"plot", {"plot"}},
      {"analyze", {}}};
  json out = json::object();
  for (const auto& name : sections.at(command)) {
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
  check([&] { smooth::validate(config.certify()); });
  check([&] { smooth::validate(config.predict()); });
  for (const char* section : {"certify", "predict"}) {
    const std::string method = config.doc().value(section, json::object()).value("method", "global");
    if (method != "global" && !config.has("dual")) {
      issues.push_back({std::string("/") + section + "/method",
                        "method '" + method + "' needs a /dual section (sigma_candidates, sigma_e, estimator)"});
    }
  }
  check([&] { report::table_radii(config.table()); });
  check([&] { config.plot(); });
}

struct Stage {
  std::string name;
  std::string command;
  ExperimentConfig config;
  std::vector<std::string> inputs;
  std::string dir;
  std::string fingerprint;
  json slurm;  // the stage's resources for slurm/submit (job.schema.json); run ignores them
};

// Commands whose work is split into shards (a Slurm array may share them out).
bool is_sharded(const std::string& command) {
  return command == "label" || command == "estimate-sigma" || command == "certify" || command == "predict";
}

bool is_training(const std::string& command) {
  return command == "train-base" || command == "train-estimator" || command == "finetune";
}

// What the schema cannot say about a stage's `slurm` section.
void check_slurm_section(const std::string& command, const json& slurm, const std::string& pointer,
                         std::vector<ConfigIssue>& issues) {
  if (slurm.contains("array") && !is_sharded(command)) {
    issues.push_back({pointer + "/array", "only sharded stages (label, estimate-sigma, certify, predict) can run as an array, not " + command});
  }
  if (slurm.contains("array_max_running") && !slurm.contains("array")) {
    issues.push_back({pointer + "/array_max_running", "needs /array"});
  }
  if (slurm.contains("gpus_per_task") && is_training(command)) {
    issues.push_back({pointer + "/gpus_per_task", "training stages take gpus_per_node: per-task GPU isolation can break "
                                                  "CUDA IPC between the ranks of one node (CLUSTER.md)"});
  }
}

std::vector<Stage> plan_job(const std::string& job_path, const std::string& out_dir) {
  const json job = read_json_file(job_path);
  validate_schema(job, SchemaKind::kJob, job_path);
  const std::string job_dir = fs::absolute(job_path).parent_path().string();
  const std::string config_path = (fs::path(job_dir) / job.at("config").get<std::string>()).lexically_normal().string();
  std::vector<Stage> stages;
  std::vector<ConfigIssue> issues;
  std::string chain;
  for (std::size_t i = 0; i < job.at("stages").size(); ++i) {
    json stage = job["stages"][i];
    substitute_out(stage, out_dir);
    const std::string pointer = "/stages/" + std::to_string(i);
    try {
      auto config = ExperimentConfig::load(config_path, stage.value("set", json::object()), job_dir);
      Stage s{stage.at("name").get<std::string>(), stage.at("command").get<std::string>(), config, {}, "", "",
              stage.value("slurm", json::object())};
      check_slurm_section(s.command, s.slurm, pointer + "/slurm", issues);
      for (const auto& input : stage.value("inputs", json::array())) {
        s.inputs.push_back((fs::path(job_dir) / input.get<std::string>()).lexically_normal().string());
      }
      s.dir = stage.contains("out") ? fs::absolute(stage["out"].get<std::string>()).lexically_normal().string()
                                    : (fs::path(out_dir) / s.name).string();
      // Parse the sections the command needs now, so every problem shows before any work.
      if (s.command == "train-base") { config.train_base(); config.model(); config.dataset(); }
      if (s.command == "train-denoiser") { config.train_denoiser(); config.denoiser(); config.dataset(); }
      config.denoiser();
      if (s.command == "label") { config.dual(); config.label(); config.dataset(); }
      if (s.command == "train-estimator" || s.command == "estimate-sigma") { config.dual(); config.dataset(); }
      if (s.command == "finetune") { config.dual(); config.finetune(); config.model(); }
      if ((s.command == "table" || s.command == "analyze" || s.command == "plot") && s.inputs.empty()) {
        issues.push_back({pointer + "/inputs", "a " + s.command + " stage needs inputs"});
      }
      if (s.command == "table") report::table_radii(config.table());
      if (s.command == "plot") config.plot();
      if (s.command == "certify") { if (config.certify().method != "global") config.dual(); config.model(); config.dataset(); }
      if (s.command == "predict") { if (config.predict().method != "global") config.dual(); }
      if (s.command == "predict") { config.predict(); config.model(); config.dataset(); }
      // A stage's fingerprint covers its own resolved config and every earlier stage's, so a
      // changed upstream stage re-runs everything after it.
      chain = io::sha256_hex(chain + s.command + stage_sections(s.command, config.doc()).dump() + json(s.inputs).dump());
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
std::string record_path(const Stage& stage) { return (fs::path(stage.dir) / ("stage-" + stage.name + ".json")).string(); }

bool stage_done(const Stage& stage) {
  const fs::path marker = record_path(stage);
  if (!fs::exists(marker)) return false;
  try {
    return read_json_file(marker.string()).value("fingerprint", "") == stage.fingerprint;
  } catch (const Error&) {
    return false;
  }
}

// Written when a stage starts: shards under the stage folder are resumable only while the
// stage's fingerprint is still the one recorded here.
std::string started_path(const Stage& stage) {
  return (fs::path(stage.dir) / ("stage-" + stage.name + ".started.json")).string();
}

// Before a stage runs: shards left by another version of it (its config or an earlier
// stage changed, or --force) are moved aside to shards.stale-<UTC time>/, never reused or
// deleted; shards of an interrupted run of this very version stay, and the stage resumes.
// Returns the folder they were moved to, or "".
std::string set_aside_stale_shards(const Stage& stage, bool force) {
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

// The stage plan with each stage's model forward passes and, at the end, their totals.
void print_plan(const std::string& job, const std::string& out_dir, const std::vector<Stage>& stages) {
  std::cout << "job " << job << " -> " << out_dir << '\n';
  std::map<std::string, std::int64_t> totals;
  std::map<std::string, bool> unknown;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    std::cout << "  " << i + 1 << ". " << stages[i].name << " (" << stages[i].command << ")"
              << (stage_done(stages[i]) ? " [up to date]" : "") << '\n';
    for (const ForwardPasses& p : stage_forward_passes(stages[i].command, stages[i].config)) {
      std::cout << "       " << describe(p) << '\n';
      const std::string key = p.model + (p.training ? " training" : "");
      totals[key] += p.total().value_or(0);
      unknown[key] = unknown[key] || !p.total();
    }
  }
  std::cout << "  model forward passes in all (one noisy copy through one model = one pass):\n";
  for (const auto& [model, total] : totals) {
    std::cout << "       " << model << ": " << group_thousands(total) << (unknown[model] ? " + unknown (data absent)" : "")
              << '\n';
  }
}

// The command line that runs one stage on its own: `dualrs <command> --config <resolved>
// --out <dir> [inputs...]` (analyze reads no config).
std::vector<std::string> stage_argv(const Stage& stage, const std::string& config_file) {
  std::vector<std::string> argv{stage.command};
  if (stage.command != "analyze") argv.insert(argv.end(), {"--config", config_file});
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

enum class Rerun { kSkipDone, kAll };

// Writes the plan slurm/submit turns into sbatch jobs (data_schemas/slurm_plan.md): per stage
// its resolved config, the completion record to publish when it succeeds, and one line of
// plan.tsv, so the Slurm side runs exactly what was resolved here and never re-reads the job
// manifest.
void emit_plan(const std::vector<Stage>& stages, const std::string& plan_dir, Rerun rerun) {
  io::ensure_directory(plan_dir);
  std::string tsv = "#index\tname\tcommand\tstatus\tdir\trecord\trecord_to\tslurm\targv...\n";
  const std::string planned = io::utc_now();
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const Stage& stage = stages[i];
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

}  // namespace

int cmd_run(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()
      ("job", po::value<std::string>()->required(), "job manifest (JSON, data_schemas/job.schema.json), positional")
      ("out,o", po::value<std::string>()->required(),
       "output folder; a stage writes OUT/<stage name>/ (or its 'out') with a completion record "
       "stage-<name>.json, and the job OUT/job_summary.json")
      ("dry-run,n", "print the stage plan (and which stages are up to date) with each stage's model forward passes "
       "(examples x passes per example, from the resolved configs; split sizes are counted without reading pixels, "
       "\"unknown\" when the data is absent) and exit; nothing is run or written")
      ("emit-plan", po::value<std::string>(),
       "write the plan for slurm/submit into this folder and exit: per stage NN-NAME.config.json (its "
       "resolved config), NN-NAME.stage.json (its completion record) and one line of plan.tsv (status "
       "done|pending, slurm resources, the command line running the stage alone); layout in "
       "data_schemas/slurm_plan.md")
      ("force", "re-run every stage, even those whose completion record matches their config");
  add_common_options(options);
  po::positional_options_description positional;
  positional.add("job", 1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm,
                  {"JOB --out DIR [--dry-run | --emit-plan PLAN_DIR] [--force]",
                   "Runs a job's stages in order on this machine. Every stage's config is validated before any\n"
                   "work starts. A stage is skipped when its completion record matches its resolved config and\n"
                   "every earlier stage's (resume); a changed stage re-runs with everything after it.",
                   "dualrs run jobs/mnist_standard_rs.json --out runs/mnist_standard_rs\n"
                   "  mpirun -np 4 dualrs run jobs/mnist_dual_rs.json --out runs/mnist_dual_rs   "
                   "(every stage runs with the 4 ranks)\n"
                   "  dualrs run jobs/mnist_dual_rs.json --out runs/mnist_dual_rs --emit-plan /tmp/plan   "
                   "(what slurm/submit runs)"})) {
    return 0;
  }
  StageContext& ctx = *inv.ctx;
  const std::string out_dir = fs::absolute(vm["out"].as<std::string>()).lexically_normal().string();
  std::vector<Stage> stages;
  ctx.agreed([&] { stages = plan_job(vm["job"].as<std::string>(), out_dir); });
  if (vm.count("emit-plan")) {
    ctx.on_root([&] {
      const std::string plan_dir = fs::absolute(vm["emit-plan"].as<std::string>()).lexically_normal().string();
      emit_plan(stages, plan_dir, vm.count("force") ? Rerun::kAll : Rerun::kSkipDone);
      std::cout << (fs::path(plan_dir) / "plan.tsv").string() << '\n';
    });
    return 0;
  }
  if (vm.count("dry-run")) {
    ctx.on_root([&] { print_plan(vm["job"].as<std::string>(), out_dir, stages); });
    return 0;
  }
  const auto job_start = std::chrono::steady_clock::now();
  json summary = {{"job", vm["job"].as<std::string>()}, {"out", out_dir}, {"started_utc", io::utc_now()},
                  {"world_size", ctx.world.size}, {"stages", json::array()}};
  ctx.on_root([&] { io::ensure_directory(out_dir); });
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const Stage& stage = stages[i];
    // A stop request that came during an earlier stage ends the job here; re-running resumes.
    if (ctx.comm.any_of(ctx.signals.stop_requested())) {
      say(ctx, "[%zu/%zu] stopped on request before %s; run the same command again to go on", i + 1, stages.size(),
          stage.name.c_str());
      throw dist::Preempted("job stopped on request");
    }
    // Rank 0 decides what is up to date, so every rank sees the same answer.
    std::int64_t done = 0;
    ctx.on_root([&] { done = !vm.count("force") && stage_done(stage) ? 1 : 0; });
    ctx.comm.broadcast(&done, sizeof done, 0);
    if (done) {
      say(ctx, "[%zu/%zu] %s: up to date, skipped", i + 1, stages.size(), stage.name.c_str());
      summary["stages"].push_back({{"name", stage.name}, {"skipped", true}});
      continue;
    }
    say(ctx, "[%zu/%zu] %s (%s)", i + 1, stages.size(), stage.name.c_str(), stage.command.c_str());
    ctx.on_root([&] {
      const std::string moved = set_aside_stale_shards(stage, vm.count("force") > 0);
      if (!moved.empty()) say(ctx, "[%zu/%zu] %s: shards of an earlier version of this stage moved to %s", i + 1,
                              stages.size(), stage.name.c_str(), moved.c_str());
    });
    const auto start = std::chrono::steady_clock::now();
    if (stage.command == "train-base") run_train_base(ctx, stage.config, stage.dir);
    else if (stage.command == "train-denoiser") run_train_denoiser(ctx, stage.config, stage.dir);
    else if (stage.command == "certify") run_certify(ctx, stage.config, stage.dir);
    else if (stage.command == "predict") run_predict(ctx, stage.config, stage.dir);
    else if (stage.command == "table") run_table(ctx, stage.inputs, stage.config.table(), stage.dir);
    else if (stage.command == "label") run_label(ctx, stage.config, stage.dir);
    else if (stage.command == "train-estimator") run_train_estimator(ctx, stage.config, stage.dir);
    else if (stage.command == "estimate-sigma") run_estimate_sigma(ctx, stage.config, stage.dir);
    else if (stage.command == "finetune") run_finetune(ctx, stage.config, stage.dir);
    else if (stage.command == "analyze") run_analyze(ctx, stage.inputs, stage.dir);
    else if (stage.command == "plot") run_plot(ctx, stage.inputs, stage.config.plot(), stage.dir);
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
  return 0;
}

int cmd_validate(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()("file", po::value<std::string>()->required(),
                        "config (configs/*.json) or job manifest (jobs/*.json; recognised by its 'stages' key)");
  add_common_options(options);
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm,
                  {"FILE",
                   "Checks a config against data_schemas/config.schema.json, or a job against\n"
                   "data_schemas/job.schema.json and every stage's resolved config, without running anything.\n"
                   "Every problem is reported, one line each, with its JSON pointer (e.g. /certify/alpha;\n"
                   "/stages/2 (...) /certify/alpha for a job stage); schema problems first, then the checks a\n"
                   "schema cannot express (sorted Sigma, sigma_e >= max Sigma, increasing radii, ...).\n"
                   "Exit status 0 when valid, 2 when not.",
                   "dualrs validate configs/mnist_dual.json && dualrs validate jobs/mnist_dual_rs.json"})) {
    return 0;
  }
  inv.ctx->on_root([&] {
    const std::string path = vm["file"].as<std::string>();
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
      std::cout << path << ": valid job\n";
    } else {
      const ExperimentConfig config = ExperimentConfig::load(path);
      std::vector<ConfigIssue> issues;
      config_issues(config, issues);
      if (!issues.empty()) throw ConfigError(path, std::move(issues));
      std::cout << path << ": valid config\n";
    }
  });
  return 0;
}

int cmd_merge(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()("dir", po::value<std::string>()->required(),
                        "a sharded stage's output folder, holding shards/shard-NNNNN.h5");
  add_common_options(options);
  po::positional_options_description positional;
  positional.add("dir", 1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm,
                  {"DIR",
                   "Writes the stage's output into DIR from its shards, sorted by example index: labels.h5,\n"
                   "sigma_estimates.h5, certify.h5 + certify.tsv or predict.h5 + predict.tsv. Checks that the\n"
                   "shards share one config and selection and hold every example exactly once; shard files are\n"
                   "only read. The stages merge by themselves unless run with --shard-subset.",
                   "dualrs merge runs/labels   (after the array jobs 'dualrs label ... --shard-subset I/N' are done)"})) {
    return 0;
  }
  StageContext& ctx = *inv.ctx;
  ctx.on_root([&] {
    const std::string dir = vm["dir"].as<std::string>();
    std::string notice;
    io::DirectoryLock lock = io::DirectoryLock::acquire(dir, "dualrs merge", ShardSubset{}, &notice);
    if (!notice.empty()) say(ctx, "merge: %s", notice.c_str());
    const io::MergeReport report = io::merge_shards(dir);
    std::string worlds;
    for (std::int64_t w : report.world_sizes) worlds += (worlds.empty() ? "" : ",") + std::to_string(w);
    say(ctx, "merge: %lld examples from %lld shards (written by worlds of %s ranks) -> %s", static_cast<long long>(report.examples),
        static_cast<long long>(report.shards), worlds.c_str(), report.outputs.front().c_str());
    if (report.non_finite_examples > 0) {
      warn(ctx, "merge: %lld of %lld examples had non-finite logits (NaN/Inf) in %lld noisy copies; they abstain",
           static_cast<long long>(report.non_finite_examples), static_cast<long long>(report.examples),
           static_cast<long long>(report.non_finite_copies));
    }
  });
  return 0;
}

}  // namespace dualrs::app
