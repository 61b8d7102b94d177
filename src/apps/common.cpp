#include "common.h"

#include <iostream>
#include <optional>
#include <sstream>

#include "dualrs/core/error.h"

namespace dualrs::app {

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

void add_shard_options(po::options_description& options) {
  options.add_options()
      ("shard-subset", po::value<std::string>(),
       "I/N: compute only the shards whose index is I mod N (0 <= I < N), e.g. one element of a Slurm array "
       "job; nothing is merged, run 'dualrs merge OUT' when every subset is done (default: all shards, merged)");
}

Verbosity verbosity_from(const po::variables_map& vm) {
  if (vm.count("quiet")) return Verbosity::kQuiet;
  if (vm.count("verbose")) return Verbosity::kVerbose;
  return Verbosity::kNormal;
}

bool parse_args(const Invocation& inv, const po::options_description& options,
                const po::positional_options_description& positional, po::variables_map& vm,
                const std::string& usage, const std::string& example) {
  return parse_args(inv, options, positional, vm, HelpText{usage, "", example});
}

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

ExperimentConfig load_config(const Invocation& inv, const std::string& path,
                             const std::function<nlohmann::json()>& make_overrides) {
  std::optional<ExperimentConfig> config;
  inv.ctx->agreed([&] { config = ExperimentConfig::load(path, make_overrides()); });
  return *config;
}

nlohmann::json overrides_from_flags(const po::variables_map& vm, const std::vector<FlagMapping>& mappings) {
  nlohmann::json patch = nlohmann::json::object();
  for (const auto& m : mappings) {
    if (!vm.count(m.flag) || vm[m.flag].defaulted()) continue;
    const nlohmann::json::json_pointer pointer(m.pointer);
    switch (m.type) {
      case FlagMapping::Type::kDouble: patch[pointer] = vm[m.flag].as<double>(); break;
      case FlagMapping::Type::kInt: patch[pointer] = vm[m.flag].as<long long>(); break;
      case FlagMapping::Type::kUInt: patch[pointer] = vm[m.flag].as<unsigned long long>(); break;
      case FlagMapping::Type::kString: patch[pointer] = vm[m.flag].as<std::string>(); break;
      case FlagMapping::Type::kDoubleList:
        patch[pointer] = parse_number_list(vm[m.flag].as<std::string>(), "--" + m.flag);
        break;
    }
  }
  return patch;
}

std::vector<double> parse_number_list(const std::string& text, const std::string& what) {
  auto to_double = [&](const std::string& s) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != s.size()) throw ConfigError("command line", what, "not a number: '" + s + "'");
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
    for (long i = 0; start + static_cast<double>(i) * step <= stop + 1e-9 * step; ++i) {
      out.push_back(start + static_cast<double>(i) * step);
    }
    return out;
  }
  std::stringstream ss(text);
  for (std::string p; std::getline(ss, p, ',');) out.push_back(to_double(p));
  if (out.empty()) throw ConfigError("command line", what, "empty list");
  return out;
}

}  // namespace dualrs::app
