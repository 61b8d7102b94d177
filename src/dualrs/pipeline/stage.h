#pragma once
/// \file
/// What a pipeline stage is (docs/architecture.md §4): one object that names itself, says
/// which config sections it reads and which command-line flags override them, how it runs
/// over the ranks, what it checks before a job starts, what it costs in model forward
/// passes, and how it runs. Every stage is listed once, in registry.cpp; the executable's
/// subcommands, `dualrs run` (fingerprints, validation, --dry-run, --emit-plan) and
/// slurm/submit (through `dualrs stages`) all read that list.

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualrs/core/config.h"
#include "dualrs/core/error.h"
#include "dualrs/pipeline/forward_passes.h"

namespace dualrs::pipeline {

struct StageContext;

/// The type of a flag's value on the command line.
enum class FlagType {
  kDouble,      ///< one number
  kInt,         ///< a signed integer
  kUInt,        ///< an unsigned integer (seeds)
  kString,      ///< text (paths, names)
  kDoubleList,  ///< "0.25,0.5,1.0" or "0:2.5:0.25" (start:stop:step, stop included)
  kRadiiOrGrid, ///< a number list as kDoubleList, or the name of a paper grid (cifar10, imagenet)
};

/// One command-line flag, declared once: the option table, the config value it overrides and
/// the default printed in `--help` (taken from the typed config, default_sections()) all come
/// from this declaration.
struct Flag {
  Flag(std::string name_, FlagType type_, std::string pointer_, std::string help_, std::string clears_ = "")
      : name(std::move(name_)), type(type_), pointer(std::move(pointer_)), help(std::move(help_)), clears(std::move(clears_)) {}
  std::string name;     ///< long option name without dashes, e.g. "batch-size"
  FlagType type = FlagType::kString;
  /// The config value the flag overrides (a JSON pointer, e.g. "/certify/batch_size"), or ""
  /// for a stage argument that is no config value (StageRun::args).
  std::string pointer;
  std::string help;     ///< meaning, units and range; "; default D (overrides P)" is appended
  /// A config value the flag removes when given (one of two exclusive modes, e.g. --sigma
  /// removes /train_base/sigma_candidates); "" for none.
  std::string clears;
};

/// Whether a stage's command line takes --config.
enum class ConfigUse {
  kRequired,  ///< --config CONFIG is required
  kOptional,  ///< --config CONFIG may give a section (table: /table)
  kNone,      ///< no config (analyze)
};

/// How a stage runs over the ranks of a job, and what it takes.
struct StageTraits {
  bool sharded = false;    ///< splits its examples into shards over the ranks; resumable per shard; --shard-subset
  bool training = false;   ///< trains data-parallel on every rank (GPUs per node, not per task)
  bool root_only = false;  ///< rank 0 does the work while the other ranks wait
  ConfigUse config = ConfigUse::kRequired;
  bool takes_inputs = false;  ///< positional input files (result files, run folders)
  bool out_optional = false;  ///< --out may be left out (the stage picks a folder from its inputs)
  /// slurm/submit: the sbatch template (slurm/<name>.sbatch) serving the stage, "" for none.
  std::string slurm_template;
  /// slurm/submit: how the stage's ranks get GPUs, "per-task", "per-node" or "none"; "" =
  /// from the traits (sharded: per-task, training: per-node, else none).
  std::string slurm_gpus;
};

/// What `dualrs CMD --help` prints around the options.
struct HelpText {
  std::string usage;        ///< after "dualrs CMD"
  std::string description;  ///< what the command does and writes
  std::string example;      ///< one or more command lines, the first starting "dualrs CMD"
};

/// One run of a stage: its resolved config, inputs and output folder.
struct StageRun {
  const ExperimentConfig& config;               ///< the stage's resolved config (empty for ConfigUse::kNone)
  std::vector<std::string> inputs;              ///< positional inputs (takes_inputs)
  std::string out_dir;                          ///< where the stage writes
  std::map<std::string, std::string> args;      ///< stage arguments (flags without a pointer) as given
};

/// A pipeline stage. Implementations live in src/dualrs/pipeline/stages/, one file each.
class Stage {
 public:
  virtual ~Stage() = default;
  /// The command name, e.g. "certify"; a job's stages name it in "command".
  virtual std::string name() const = 0;
  /// One line for `dualrs --help`.
  virtual std::string summary() const = 0;
  virtual HelpText help() const = 0;
  /// Help for --config (the sections it needs) and for --out (what it writes).
  virtual std::string config_help() const { return ""; }
  virtual std::string out_help() const = 0;
  /// The files and folders the stage writes into its output folder (e.g. "certify.h5",
  /// "shards"), or {"*"} for the whole folder: two stages of a job may share a folder only
  /// when these are disjoint.
  virtual std::vector<std::string> outputs() const { return {"*"}; }
  /// Help for the positional inputs (takes_inputs).
  virtual std::string inputs_help() const { return ""; }
  /// The config sections the stage reads: its fingerprint in a job covers these only, so
  /// editing one stage's section does not re-run the stages before it.
  virtual std::vector<std::string> sections() const = 0;
  /// The flags that override single config values (and stage arguments).
  virtual std::vector<Flag> flags() const { return {}; }
  virtual StageTraits traits() const = 0;
  /// Appends every problem of `config` for this stage (the sections it needs, parsed) to
  /// `issues`, before any stage of a job runs. Keys a job fills in per stage are checked
  /// here as in run. `inputs` are the stage's positional inputs.
  virtual void validate(const ExperimentConfig& config, const std::vector<std::string>& inputs,
                        std::vector<ConfigIssue>& issues) const;
  /// The model forward passes the stage makes with `config` (docs/architecture.md §6);
  /// empty for stages that run no model.
  virtual std::vector<ForwardPasses> plan(const ExperimentConfig& config) const {
    (void)config;
    return {};
  }
  /// Collective: runs the stage on every rank of `ctx`.
  /// \throws dist::AgreedFailure (on every rank) when it fails, dist::Preempted when stopped.
  virtual void run(StageContext& ctx, const StageRun& run) const = 0;
};

/// Whether `stage` reads the dataset section (and so loads the dataset).
bool reads_dataset(const Stage& stage);

/// Runs `fn`, adding the issues of a ConfigError it throws to `issues` (with `config`'s file
/// as their source when they have none).
template <typename Fn>
void collect_issues(std::vector<ConfigIssue>& issues, Fn&& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    issues.insert(issues.end(), e.issues().begin(), e.issues().end());
  }
}

/// Parses "0,0.25,0.5" or "0:2.5:0.25" (start:stop:step, stop included) for FlagType::kDoubleList:
/// finite numbers, at most 10,000 of them. \param what names the flag in errors.
/// \throws ConfigError.
std::vector<double> parse_number_list(const std::string& text, const std::string& what);

/// Every typed config section with its defaults, as `to_json` writes it (keys as in a config
/// file): what `--help` prints as a flag's default.
const nlohmann::json& default_sections();

/// The text `--help` prints for a flag: its help, "; default D" when `default_sections()`
/// has a value at its pointer, and "(overrides P)".
std::string flag_help(const Flag& flag);

}  // namespace dualrs::pipeline
