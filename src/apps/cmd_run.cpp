// dualrs run: executes a job manifest's stages in order on this allocation.

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include "common.h"
#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/provenance.h"

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
      {"train-base", {"dataset", "model", "train_base"}},
      {"label", {"dataset", "model", "dual", "label"}},
      {"train-estimator", {"dataset", "dual", "label", "train_estimator"}},
      {"estimate-sigma", {"dataset", "dual", "estimate_sigma"}},
      {"finetune", {"dataset", "model", "dual", "finetune"}},
      {"certify", {"dataset", "model", "dual", "certify"}},
      {"predict", {"dataset", "model", "dual", "predict"}},
      {"table", {"table"}},
      {"analyze", {}}};
  json out = json::object();
  for (const auto& name : sections.at(command)) {
    if (doc.contains(name)) out[name] = doc.at(name);
  }
  return out;
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
      if (s.command == "label") { config.dual(); config.label(); config.dataset(); }
      if (s.command == "train-estimator" || s.command == "estimate-sigma") { config.dual(); config.dataset(); }
      if (s.command == "finetune") { config.dual(); config.finetune(); config.model(); }
      if ((s.command == "table" || s.command == "analyze") && s.inputs.empty()) {
        issues.push_back({pointer + "/inputs", "a " + s.command + " stage needs inputs"});
      }
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
      ("job", po::value<std::string>()->required(), "job manifest (JSON, see data_schemas/job.schema.json)")
      ("out,o", po::value<std::string>()->required(), "output folder; stage outputs go to OUT/<stage name>/")
      ("dry-run,n", "print the stage plan and exit")
      ("emit-plan", po::value<std::string>(),
       "write the plan for slurm/submit into this folder and exit: per stage NN-NAME.config.json (its "
       "resolved config), NN-NAME.stage.json (its completion record) and one line of plan.tsv (status "
       "done|pending, slurm resources, the command line running the stage alone); layout in "
       "data_schemas/slurm_plan.md")
      ("force", "re-run stages even when their outputs are up to date");
  add_common_options(options);
  po::positional_options_description positional;
  positional.add("job", 1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm, "JOB --out DIR [--dry-run | --emit-plan PLAN_DIR] [--force]",
                  "dualrs run jobs/mnist_standard_rs.json --out runs/mnist_standard_rs\n"
                  "  dualrs run jobs/mnist_dual_rs.json --out runs/mnist_dual_rs --emit-plan /tmp/plan   "
                  "(what slurm/submit runs)")) {
    return 0;
  }
  const Verbosity verbosity = verbosity_from(vm);
  const std::string out_dir = fs::absolute(vm["out"].as<std::string>()).lexically_normal().string();
  const std::vector<Stage> stages = plan_job(vm["job"].as<std::string>(), out_dir);
  if (vm.count("emit-plan")) {
    const std::string plan_dir = fs::absolute(vm["emit-plan"].as<std::string>()).lexically_normal().string();
    emit_plan(stages, plan_dir, vm.count("force") ? Rerun::kAll : Rerun::kSkipDone);
    std::cout << (fs::path(plan_dir) / "plan.tsv").string() << '\n';
    return 0;
  }
  if (vm.count("dry-run")) {
    std::cout << "job " << vm["job"].as<std::string>() << " -> " << out_dir << '\n';
    for (std::size_t i = 0; i < stages.size(); ++i) {
      std::cout << "  " << i + 1 << ". " << stages[i].name << " (" << stages[i].command << ")"
                << (stage_done(stages[i]) ? " [up to date]" : "") << '\n';
    }
    return 0;
  }
  io::ensure_directory(out_dir);
  const auto job_start = std::chrono::steady_clock::now();
  json summary = {{"job", vm["job"].as<std::string>()}, {"out", out_dir}, {"started_utc", io::utc_now()},
                  {"stages", json::array()}};
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const Stage& stage = stages[i];
    if (!vm.count("force") && stage_done(stage)) {
      if (verbosity != Verbosity::kQuiet) std::fprintf(stderr, "[%zu/%zu] %s: up to date, skipped\n", i + 1, stages.size(), stage.name.c_str());
      summary["stages"].push_back({{"name", stage.name}, {"skipped", true}});
      continue;
    }
    if (verbosity != Verbosity::kQuiet) std::fprintf(stderr, "[%zu/%zu] %s (%s)\n", i + 1, stages.size(), stage.name.c_str(), stage.command.c_str());
    const auto start = std::chrono::steady_clock::now();
    if (stage.command == "train-base") run_train_base(stage.config, stage.dir, verbosity);
    else if (stage.command == "certify") run_certify(stage.config, stage.dir, verbosity);
    else if (stage.command == "predict") run_predict(stage.config, stage.dir, verbosity);
    else if (stage.command == "table") run_table(stage.inputs, stage.config.table(), stage.dir, verbosity);
    else if (stage.command == "label") run_label(stage.config, stage.dir, verbosity);
    else if (stage.command == "train-estimator") run_train_estimator(stage.config, stage.dir, verbosity);
    else if (stage.command == "estimate-sigma") run_estimate_sigma(stage.config, stage.dir, verbosity);
    else if (stage.command == "finetune") run_finetune(stage.config, stage.dir, verbosity);
    else if (stage.command == "analyze") run_analyze(stage.inputs, stage.dir, verbosity);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    io::ensure_directory(stage.dir);
    io::write_file_atomic(record_path(stage),
                          json({{"name", stage.name}, {"command", stage.command}, {"fingerprint", stage.fingerprint},
                                {"seconds", seconds}, {"finished_utc", io::utc_now()}}).dump(2) + "\n");
    summary["stages"].push_back({{"name", stage.name}, {"seconds", seconds}});
    if (verbosity != Verbosity::kQuiet) std::fprintf(stderr, "[%zu/%zu] %s done in %s\n", i + 1, stages.size(), stage.name.c_str(), format_duration(seconds).c_str());
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - job_start).count();
  summary["seconds"] = total;
  summary["finished_utc"] = io::utc_now();
  io::write_file_atomic((fs::path(out_dir) / "job_summary.json").string(), summary.dump(2) + "\n");
  if (verbosity != Verbosity::kQuiet) std::fprintf(stderr, "job finished in %s; outputs in %s\n", format_duration(total).c_str(), out_dir.c_str());
  return 0;
}

int cmd_validate(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()("file", po::value<std::string>()->required(), "config or job file (JSON)");
  add_common_options(options);
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm, "FILE", "dualrs validate configs/mnist.json")) return 0;
  const std::string path = vm["file"].as<std::string>();
  const json doc = read_json_file(path);
  if (doc.is_object() && doc.contains("stages")) {
    plan_job(path, fs::absolute("dualrs-validate-out").string());
    std::cout << path << ": valid job\n";
  } else {
    ExperimentConfig::load(path);
    std::cout << path << ": valid config\n";
  }
  return 0;
}

}  // namespace dualrs::app
