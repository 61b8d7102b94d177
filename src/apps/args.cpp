#include "args.h"

#include <cmath>
#include <iostream>
#include <map>
#include <optional>

#include "dualrs/core/error.h"
#include "dualrs/dist/world.h"
#include "dualrs/pipeline/dataset_index.h"
#include "dualrs/pipeline/job.h"

namespace dualrs::app {
using pipeline::Flag;
using pipeline::FlagType;

void add_common_options(po::options_description& options) {
  options.add_options()
      ("help,h", "show this help and exit")
      ("quiet,q", "print errors only: no progress lines or summaries")
      ("verbose,v", "a start line per long stage and, when stderr is not a terminal, a progress line every 5 s "
       "instead of 30 s ($DUALRS_PROGRESS_INTERVAL sets the seconds)")
      ("expect-world-size", po::value<int>(),
       "fail unless the job has exactly N MPI ranks (catches launchers that start N separate "
       "single-rank copies), e.g. --expect-world-size 16");
}

void add_plan_options(po::options_description& options) {
  const pipeline::PlanLimits defaults;
  options.add_options()
      ("max-forwards", po::value<long long>(),
       ("the most model forward passes one stage may plan; a larger plan is refused before it starts; default " +
        pipeline::group_thousands(defaults.max_forward_passes)).c_str())
      ("allow-huge", "run a stage whose plan exceeds --max-forwards anyway");
}

pipeline::PlanLimits plan_limits_from(const po::variables_map& vm) {
  pipeline::PlanLimits limits;
  if (vm.count("max-forwards")) {
    const long long value = vm["max-forwards"].as<long long>();
    if (value < 1) throw ConfigError("command line", "--max-forwards", "must be >= 1, got " + std::to_string(value));
    limits.max_forward_passes = value;
  }
  limits.allow_huge = vm.count("allow-huge") > 0;
  return limits;
}

void add_shard_options(po::options_description& options) {
  options.add_options()
      ("shard-subset", po::value<std::string>(),
       "I/N: compute only the shards whose index is I mod N (0 <= I < N), e.g. one element of a Slurm array "
       "job; nothing is merged, run 'dualrs merge OUT' when every subset is done (default: all shards, merged)");
}

namespace {
Verbosity verbosity_from(const po::variables_map& vm) {
  if (vm.count("quiet")) return Verbosity::kQuiet;
  if (vm.count("verbose")) return Verbosity::kVerbose;
  return Verbosity::kNormal;
}
}  // namespace

bool parse_args(const Invocation& inv, const po::options_description& options,
                const po::positional_options_description& positional, po::variables_map& vm, const HelpText& help_text) {
  StageContext& ctx = *inv.ctx;
  bool help = false;
  ctx.agreed([&] {
    try {
      po::store(po::command_line_parser(inv.args).options(options).positional(positional).run(), vm);
      if (vm.count("help")) {
        help = true;
        return;
      }
      po::notify(vm);
    } catch (const po::error& e) {
      throw ConfigError("command line", "", std::string(e.what()) + " (see 'dualrs " + inv.name + " --help')");
    }
    if (vm.count("expect-world-size")) dist::check_expected_world_size(ctx.world, vm["expect-world-size"].as<int>());
    ctx.verbosity = verbosity_from(vm);
    if (vm.count("shard-subset")) ctx.subset = parse_shard_subset(vm["shard-subset"].as<std::string>());
  });
  if (help && ctx.is_root()) {
    std::cout << "usage: dualrs " << inv.name << ' ' << help_text.usage << "\n\n";
    if (!help_text.description.empty()) std::cout << help_text.description << "\n\n";
    std::cout << options << "\nexample:\n  " << help_text.example << "\n";
  }
  return !help;
}

bool parse_args(const Invocation& inv, const po::options_description& options,
                const po::positional_options_description& positional, po::variables_map& vm,
                const std::string& usage, const std::string& example) {
  return parse_args(inv, options, positional, vm, HelpText{usage, "", example});
}

namespace {

// A stage's options, from its declaration.
po::options_description stage_options(const pipeline::Stage& stage) {
  const pipeline::StageTraits traits = stage.traits();
  po::options_description options("options");
  if (traits.takes_inputs) {
    options.add_options()("inputs", po::value<std::vector<std::string>>()->multitoken(), stage.inputs_help().c_str());
  }
  if (traits.config == pipeline::ConfigUse::kRequired) {
    options.add_options()("config,c", po::value<std::string>()->required(),
                          ("experiment config (JSON, data_schemas/config.schema.json): " + stage.config_help()).c_str());
  } else if (traits.config == pipeline::ConfigUse::kOptional) {
    options.add_options()("config,c", po::value<std::string>(), stage.config_help().c_str());
  }
  if (traits.out_optional) {
    options.add_options()("out,o", po::value<std::string>(), stage.out_help().c_str());
  } else {
    options.add_options()("out,o", po::value<std::string>()->required(), stage.out_help().c_str());
  }
  for (const Flag& flag : stage.flags()) {
    const std::string help = pipeline::flag_help(flag);
    switch (flag.type) {
      case FlagType::kDouble: options.add_options()(flag.name.c_str(), po::value<double>(), help.c_str()); break;
      case FlagType::kInt: options.add_options()(flag.name.c_str(), po::value<long long>(), help.c_str()); break;
      case FlagType::kUInt: options.add_options()(flag.name.c_str(), po::value<unsigned long long>(), help.c_str()); break;
      case FlagType::kString:
      case FlagType::kDoubleList:
      case FlagType::kRadiiOrGrid: options.add_options()(flag.name.c_str(), po::value<std::string>(), help.c_str()); break;
    }
  }
  if (traits.sharded) add_shard_options(options);
  add_plan_options(options);
  add_common_options(options);
  return options;
}

// The flags given, as a JSON merge patch at their pointers (a flag with `clears` also
// removes that value).
nlohmann::json overrides_from_flags(const po::variables_map& vm, const std::vector<Flag>& flags) {
  nlohmann::json patch = nlohmann::json::object();
  for (const Flag& f : flags) {
    if (f.pointer.empty() || !vm.count(f.name) || vm[f.name].defaulted()) continue;
    const nlohmann::json::json_pointer pointer(f.pointer);
    switch (f.type) {
      case FlagType::kDouble: {
        const double value = vm[f.name].as<double>();
        if (!std::isfinite(value)) {
          throw ConfigError("command line", "--" + f.name, "must be a finite number, got " + format_decimal(value));
        }
        patch[pointer] = value;
        break;
      }
      case FlagType::kInt: patch[pointer] = vm[f.name].as<long long>(); break;
      case FlagType::kUInt: patch[pointer] = vm[f.name].as<unsigned long long>(); break;
      case FlagType::kString: patch[pointer] = vm[f.name].as<std::string>(); break;
      case FlagType::kDoubleList:
        patch[pointer] = pipeline::parse_number_list(vm[f.name].as<std::string>(), "--" + f.name);
        break;
      case FlagType::kRadiiOrGrid: {
        const std::string text = vm[f.name].as<std::string>();
        if (text == "cifar10" || text == "imagenet") patch[pointer] = text;
        else patch[pointer] = pipeline::parse_number_list(text, "--" + f.name);
        break;
      }
    }
    if (!f.clears.empty()) patch[nlohmann::json::json_pointer(f.clears)] = nullptr;
  }
  return patch;
}

}  // namespace

int run_stage_command(const pipeline::Stage& stage, const Invocation& inv) {
  const pipeline::StageTraits traits = stage.traits();
  const po::options_description options = stage_options(stage);
  po::positional_options_description positional;
  if (traits.takes_inputs) positional.add("inputs", -1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm, stage.help())) return 0;
  const std::vector<Flag> flags = stage.flags();
  std::optional<ExperimentConfig> config;
  std::map<std::string, std::string> args;
  inv.ctx->agreed([&] {
    if (vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      config = ExperimentConfig::load(path, overrides_from_flags(vm, flags));
      // A flag that removes a value of the config says so: nothing is replaced silently.
      const nlohmann::json raw = read_json_file(path);
      for (const Flag& f : flags) {
        if (f.clears.empty() || !vm.count(f.name)) continue;
        const nlohmann::json::json_pointer cleared(f.clears);
        if (raw.contains(cleared) && !raw.at(cleared).is_null()) {
          pipeline::say(*inv.ctx, "note: --%s replaces %s of %s", f.name.c_str(), f.clears.c_str(), path.c_str());
        }
      }
    } else {
      config = ExperimentConfig::from_json(nlohmann::json::object(), "command line");
    }
    for (const Flag& f : flags) {
      if (f.pointer.empty() && vm.count(f.name)) args[f.name] = vm[f.name].as<std::string>();
    }
  });
  const std::vector<std::string> inputs =
      vm.count("inputs") ? vm["inputs"].as<std::vector<std::string>>() : std::vector<std::string>{};
  pipeline::PlanLimits limits;
  inv.ctx->agreed([&] { limits = plan_limits_from(vm); });
  // The dataset's file index next to the outputs (docs/cluster.md §8b) before the plan counts
  // its examples on every rank.
  const std::string out = vm.count("out") ? vm["out"].as<std::string>() : "";
  if (pipeline::reads_dataset(stage)) pipeline::prepare_dataset_index(*inv.ctx, *config, out);
  pipeline::announce_plan(*inv.ctx, stage.name(), stage, *config, limits);
  stage.run(*inv.ctx, pipeline::StageRun{*config, inputs, out, args});
  return 0;
}

}  // namespace dualrs::app
