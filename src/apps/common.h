#pragma once
// Shared plumbing of the dualrs subcommands: option parsing helpers, config loading with
// flag overrides, and the stage entry points `run` reuses. No algorithm lives here.

#include <functional>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "dualrs/core/config.h"
#include "dualrs/core/progress.h"
#include "stage_context.h"

namespace dualrs::app {

namespace po = boost::program_options;

/// What a subcommand receives.
struct Invocation {
  std::string name;                ///< subcommand name
  std::vector<std::string> args;   ///< arguments after the subcommand
  StageContext* ctx = nullptr;     ///< the job's ranks, signals, error wording
};

/// Common switches for every subcommand: --quiet/--verbose and --expect-world-size.
void add_common_options(po::options_description& options);
Verbosity verbosity_from(const po::variables_map& vm);

/// --shard-subset for the sharded stages (label, estimate-sigma, certify, predict).
void add_shard_options(po::options_description& options);

/// What `dualrs CMD --help` prints around the options: the usage line (after "dualrs CMD"),
/// a paragraph saying what the command does and writes, and an example command line.
struct HelpText {
  std::string usage;
  std::string description;
  std::string example;
};

/// Collective. Parses `args` against `options` (+ positional) on every rank and agrees;
/// handles --help (rank 0 prints usage, description, options and example; returns false
/// everywhere); checks --expect-world-size; sets the context's verbosity (and shard subset
/// when the options have --shard-subset). \throws dist::AgreedFailure on bad flags.
bool parse_args(const Invocation& inv, const po::options_description& options,
                const po::positional_options_description& positional, po::variables_map& vm, const HelpText& help);
/// The same without a description paragraph.
bool parse_args(const Invocation& inv, const po::options_description& options,
                const po::positional_options_description& positional, po::variables_map& vm,
                const std::string& usage, const std::string& example);

/// Copies each given flag into a JSON merge patch at its pointer, e.g. --sigma -> /certify/sigma.
struct FlagMapping {
  std::string flag;
  std::string pointer;
  enum class Type { kDouble, kInt, kUInt, kString, kDoubleList } type;
};
nlohmann::json overrides_from_flags(const po::variables_map& vm, const std::vector<FlagMapping>& mappings);

/// Collective: loads `path` with the overrides `make_overrides()` returns (a JSON merge patch,
/// usually overrides_from_flags) on every rank and agrees.
/// \throws dist::AgreedFailure naming the problems.
ExperimentConfig load_config(const Invocation& inv, const std::string& path,
                             const std::function<nlohmann::json()>& make_overrides);

/// Parses "0,0.25,0.5" or "0:2.5:0.25" (start:stop:step, inclusive). \throws ConfigError.
std::vector<double> parse_number_list(const std::string& text, const std::string& what);

/// Stage entry points (used by the subcommands and by `run`). Each writes into `out_dir` and
/// is collective: every rank of `ctx` calls it. Sharded stages (label, estimate-sigma,
/// certify, predict) split their shards over the ranks; training stages run on rank 0 while
/// the other ranks wait; table and analyze run on rank 0.
/// \throws dist::AgreedFailure (on every rank) when it fails, dist::Preempted when stopped.
void run_train_base(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir);
void run_train_denoiser(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir);
void run_certify(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir);
void run_predict(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir);
void run_label(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir);
void run_train_estimator(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir);
void run_estimate_sigma(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir);
void run_finetune(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir);
/// Method analyses (METHOD.md §8) from result files: global-σ baselines + one Dual RS file.
void run_analyze(StageContext& ctx, const std::vector<std::string>& inputs, const std::string& out_dir);
/// Tables over certification results; `names` (empty, or one per input) rename the rows. Rank 0.
void run_table(StageContext& ctx, const std::vector<std::string>& inputs, const TableConfig& table,
               const std::string& out_dir, const std::vector<std::string>& names = {});

/// Figures of a run (analysis/dualrs_plots.py): `inputs` are run/stage folders or result files. Rank 0.
/// \throws Error when no Python with matplotlib/h5py is found, DataError when the script fails.
void run_plot(StageContext& ctx, const std::vector<std::string>& inputs, const PlotConfig& plot,
              const std::string& out_dir);

/// Subcommands: return the process exit code.
int cmd_radius(const Invocation& inv);
int cmd_certify(const Invocation& inv);
int cmd_predict(const Invocation& inv);
int cmd_train_base(const Invocation& inv);
int cmd_table(const Invocation& inv);
int cmd_run(const Invocation& inv);
int cmd_label(const Invocation& inv);
int cmd_train_estimator(const Invocation& inv);
int cmd_estimate_sigma(const Invocation& inv);
int cmd_finetune(const Invocation& inv);
int cmd_analyze(const Invocation& inv);
int cmd_validate(const Invocation& inv);
int cmd_merge(const Invocation& inv);
int cmd_plot(const Invocation& inv);
int cmd_train_denoiser(const Invocation& inv);
int cmd_timestep(const Invocation& inv);
int cmd_check_model(const Invocation& inv);

}  // namespace dualrs::app
