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

namespace dualrs::app {

namespace po = boost::program_options;

/// What a subcommand receives.
struct Invocation {
  std::string name;                ///< subcommand name
  std::vector<std::string> args;   ///< arguments after the subcommand
};

/// Common switches (--quiet/--verbose) for every subcommand.
void add_common_options(po::options_description& options);
Verbosity verbosity_from(const po::variables_map& vm);

/// Parses `args` against `options` (+ positional), handles --help (prints usage, description
/// and example; returns false). \throws ConfigError("command line", ...) on bad flags.
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

/// Parses "0,0.25,0.5" or "0:2.5:0.25" (start:stop:step, inclusive). \throws ConfigError.
std::vector<double> parse_number_list(const std::string& text, const std::string& what);

/// Stage entry points (used by the subcommands and by `run`). Each writes into `out_dir`.
void run_train_base(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity);
void run_train_denoiser(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity);
void run_certify(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity);
void run_predict(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity);
void run_label(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity);
void run_train_estimator(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity);
void run_estimate_sigma(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity);
void run_finetune(const ExperimentConfig& config, const std::string& out_dir, Verbosity verbosity);
/// Method analyses (METHOD.md §8) from result files: global-σ baselines + one Dual RS file.
void run_analyze(const std::vector<std::string>& inputs, const std::string& out_dir, Verbosity verbosity);
void run_table(const std::vector<std::string>& inputs, const TableConfig& table, const std::string& out_dir,
               Verbosity verbosity);

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
int cmd_train_denoiser(const Invocation& inv);
int cmd_timestep(const Invocation& inv);
int cmd_check_model(const Invocation& inv);

}  // namespace dualrs::app
