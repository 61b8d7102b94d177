// dualrs table: certified-accuracy tables from certification result files.

#include <filesystem>
#include <iostream>

#include "common.h"
#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/result_files.h"
#include "dualrs/report/certified_accuracy.h"

namespace dualrs::app {

void run_table(const std::vector<std::string>& inputs, const TableConfig& table, const std::string& out_dir,
               Verbosity verbosity) {
  if (inputs.empty()) throw ConfigError("command line", "inputs", "no result files given");
  std::vector<io::CertifyResults> results;
  for (const auto& path : inputs) results.push_back(io::read_certify_results(path));
  const std::vector<double> radii = table.radii.empty() ? report::default_radii() : table.radii;
  std::vector<report::Convention> conventions;
  if (table.convention == "inclusive" || table.convention == "both") conventions.push_back(report::Convention::kInclusive);
  if (table.convention == "strict" || table.convention == "both") conventions.push_back(report::Convention::kStrict);
  if (conventions.empty()) throw ConfigError("", "/table/convention", "must be inclusive, strict or both");

  std::vector<report::MethodSummary> summaries;
  for (const auto& r : results) summaries.push_back(report::summarize(r));
  std::string markdown;
  for (auto convention : conventions) markdown += report::markdown_table(results, radii, convention) + "\n";

  io::ensure_directory(out_dir);
  const std::filesystem::path dir(out_dir);
  io::write_file_atomic((dir / "certified_accuracy.csv").string(),
                        report::tidy_csv(report::accuracy_rows(results, radii, conventions)));
  io::write_file_atomic((dir / "summary.csv").string(), report::summary_csv(summaries));
  io::write_file_atomic((dir / "certified_accuracy.md").string(), markdown);
  if (verbosity != Verbosity::kQuiet) std::cout << markdown;
}

int cmd_table(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()
      ("inputs", po::value<std::vector<std::string>>()->multitoken(), "certify.h5 result files (positional)")
      ("config,c", po::value<std::string>(),
       "experiment config whose /table section (radii, convention) replaces the defaults below; flags given "
       "override it (slurm/submit runs a job's table stage this way)")
      ("out,o", po::value<std::string>()->required(),
       "output folder: certified_accuracy.csv (tidy), summary.csv, certified_accuracy.md")
      ("radii", po::value<std::string>()->default_value("0:2.5:0.25"),
       "radii: comma list or start:stop:step (l2, pixel units)")
      ("convention", po::value<std::string>()->default_value("both"),
       "inclusive (radius >= r, Cohen), strict (radius > r, Dual RS paper) or both");
  add_common_options(options);
  po::positional_options_description positional;
  positional.add("inputs", -1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm, "RESULT.h5... --out DIR [--radii R] [--convention C]",
                  "dualrs table runs/mnist/certify_sigma_0.25/certify.h5 runs/mnist/certify_sigma_0.5/certify.h5 -o runs/mnist")) {
    return 0;
  }
  TableConfig table;
  if (vm.count("config")) table = ExperimentConfig::load(vm["config"].as<std::string>()).table();
  if (!vm.count("config") || !vm["radii"].defaulted()) {
    table.radii = parse_number_list(vm["radii"].as<std::string>(), "--radii");
  }
  if (!vm.count("config") || !vm["convention"].defaulted()) table.convention = vm["convention"].as<std::string>();
  const auto inputs = vm.count("inputs") ? vm["inputs"].as<std::vector<std::string>>() : std::vector<std::string>{};
  run_table(inputs, table, vm["out"].as<std::string>(), verbosity_from(vm));
  return 0;
}

}  // namespace dualrs::app

#include "dualrs/report/analyses.h"

namespace dualrs::app {

void run_analyze(const std::vector<std::string>& inputs, const std::string& out_dir, Verbosity verbosity) {
  std::vector<io::CertifyResults> global;
  std::vector<io::CertifyResults> dual;
  for (const auto& path : inputs) {
    io::CertifyResults r = io::read_certify_results(path);
    if (r.info.sigma_e > 0) dual.push_back(std::move(r));
    else if (r.info.sigma_candidates.empty()) global.push_back(std::move(r));
  }
  if (dual.size() != 1) {
    throw ConfigError("analyze", "inputs", "needs exactly one Dual RS result among the inputs, got " + std::to_string(dual.size()));
  }
  const report::SigmaAnalysis a = report::analyze_sigma_choice(global, dual.front());
  io::ensure_directory(out_dir);
  const std::filesystem::path dir(out_dir);
  io::write_file_atomic((dir / "optimal_sigma_distribution.csv").string(), report::sigma_distribution_csv(a));
  io::write_file_atomic((dir / "delta_radius_summary.csv").string(), report::delta_summary_csv(a));
  io::write_file_atomic((dir / "sigma_choice_confusion.csv").string(), report::confusion_csv(a));
  if (verbosity != Verbosity::kQuiet) {
    std::cout << "optimal sigma vs estimator choice:\n" << report::sigma_distribution_csv(a) << '\n'
              << report::delta_summary_csv(a);
  }
}

int cmd_analyze(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()
      ("inputs", po::value<std::vector<std::string>>()->multitoken(),
       "certify.h5 files: the global-sigma results for every sigma of Sigma and one Dual RS result (positional)")
      ("out,o", po::value<std::string>()->required(),
       "output folder: optimal_sigma_distribution.csv, delta_radius_summary.csv, sigma_choice_confusion.csv");
  add_common_options(options);
  po::positional_options_description positional;
  positional.add("inputs", -1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm, "RESULT.h5... --out DIR",
                  "dualrs analyze runs/dual/certify_*/certify.h5 -o runs/dual")) {
    return 0;
  }
  run_analyze(vm.count("inputs") ? vm["inputs"].as<std::vector<std::string>>() : std::vector<std::string>{},
              vm["out"].as<std::string>(), verbosity_from(vm));
  return 0;
}

}  // namespace dualrs::app
