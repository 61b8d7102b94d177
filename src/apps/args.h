#pragma once
// Command-line parsing of the dualrs subcommands: the switches every command has, the
// options of a pipeline stage built from its registry declaration (pipeline::Stage::flags),
// and config loading with flag overrides. No algorithm lives here.

#include <functional>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include "dualrs/core/config.h"
#include "dualrs/core/progress.h"
#include "dualrs/pipeline/forward_passes.h"
#include "dualrs/pipeline/stage.h"
#include "dualrs/pipeline/stage_context.h"

namespace dualrs::app {

namespace po = boost::program_options;
using pipeline::HelpText;
using pipeline::StageContext;

/// What a subcommand receives.
struct Invocation {
  std::string name;                ///< subcommand name
  std::vector<std::string> args;   ///< arguments after the subcommand
  StageContext* ctx = nullptr;     ///< the job's ranks, signals, error wording
};

/// Common switches for every subcommand: --help, --quiet/--verbose and --expect-world-size.
void add_common_options(po::options_description& options);

/// --max-forwards and --allow-huge: the ceiling on a stage's planned forward passes.
void add_plan_options(po::options_description& options);
/// The limits those options give. \throws ConfigError (--max-forwards < 1).
pipeline::PlanLimits plan_limits_from(const po::variables_map& vm);

/// --shard-subset for the sharded stages (label, estimate-sigma, certify, predict).
void add_shard_options(po::options_description& options);

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

/// Collective: the subcommand of a pipeline stage. Its options come from the stage's
/// declaration (--config/--out/inputs by its traits, its flags with their defaults, shard and
/// common switches); the config is loaded with the flags as overrides and the stage runs.
/// \return the exit code (0; failures throw dist::AgreedFailure).
int run_stage_command(const pipeline::Stage& stage, const Invocation& inv);

/// Subcommands that are tools rather than stages: return the process exit code.
int cmd_radius(const Invocation& inv);
int cmd_timestep(const Invocation& inv);
int cmd_check_model(const Invocation& inv);
int cmd_run(const Invocation& inv);
int cmd_validate(const Invocation& inv);
int cmd_merge(const Invocation& inv);
int cmd_calibrate(const Invocation& inv);
int cmd_index_dataset(const Invocation& inv);
int cmd_stages(const Invocation& inv);

}  // namespace dualrs::app
