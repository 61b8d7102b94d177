// dualrs table: certified-accuracy tables from certification result files.

#include <filesystem>
#include <iostream>
#include <sstream>

#include "common.h"
#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/result_files.h"
#include "dualrs/report/certified_accuracy.h"
#include "dualrs/report/wide_table.h"

namespace dualrs::app {

namespace {
void table_on_this_rank(const std::vector<std::string>& inputs, const TableConfig& table, const std::string& out_dir,
                        Verbosity verbosity, const std::vector<std::string>& names) {
  if (inputs.empty()) throw ConfigError("command line", "inputs", "no result files given");
  if (!names.empty() && names.size() != inputs.size()) {
    throw ConfigError("command line", "--names", std::to_string(names.size()) + " names for " +
                                                     std::to_string(inputs.size()) + " result files");
  }
  const std::vector<double> radii = report::table_radii(table);
  const std::vector<report::Convention> conventions = report::table_conventions(table.convention);
  std::vector<io::CertifyResults> results;
  std::vector<std::string> methods;
  std::vector<std::string> files;
  for (const auto& input : inputs) {
    // A stage folder stands for its certify.h5.
    files.push_back(std::filesystem::is_directory(input) ? (std::filesystem::path(input) / "certify.h5").string() : input);
    results.push_back(io::read_certify_results(files.back()));
    methods.push_back(results.back().info.method);
  }
  const std::vector<std::string> rows = names.empty() ? report::unique_row_names(methods, files) : names;
  for (std::size_t i = 0; i < results.size(); ++i) results[i].info.method = rows[i];

  std::vector<report::MethodSummary> summaries;
  for (const auto& r : results) summaries.push_back(report::summarize(r));
  std::vector<report::WideTable> tables;
  std::string markdown, latex;
  for (auto convention : conventions) {
    tables.push_back(report::make_wide_table(results, radii, convention));
    markdown += report::to_markdown(tables.back()) + "\n";
    latex += report::to_latex(tables.back()) + "\n";
  }

  io::ensure_directory(out_dir);
  const std::filesystem::path dir(out_dir);
  io::write_file_atomic((dir / "certified_accuracy.csv").string(),
                        report::tidy_csv(report::accuracy_rows(results, radii, conventions)));
  io::write_file_atomic((dir / "certified_accuracy_wide.csv").string(), report::wide_csv(tables));
  io::write_file_atomic((dir / "summary.csv").string(), report::summary_csv(summaries));
  io::write_file_atomic((dir / "certified_accuracy.md").string(), markdown);
  io::write_file_atomic((dir / "certified_accuracy.tex").string(), latex);
  if (verbosity != Verbosity::kQuiet) std::cout << markdown;
}
}  // namespace

void run_table(StageContext& ctx, const std::vector<std::string>& inputs, const TableConfig& table,
               const std::string& out_dir, const std::vector<std::string>& names) {
  ctx.on_root([&] { table_on_this_rank(inputs, table, out_dir, ctx.verbosity, names); });
}

int cmd_table(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()
      ("inputs", po::value<std::vector<std::string>>()->multitoken(),
       "certify.h5 result files or stage folders holding one (positional), one table row each, in this order")
      ("out,o", po::value<std::string>()->required(),
       "output folder: certified_accuracy.csv (tidy: one row per method, convention and radius), "
       "certified_accuracy_wide.csv, certified_accuracy.md, certified_accuracy.tex (booktabs), summary.csv "
       "(data_schemas/reports.md)")
      ("config,c", po::value<std::string>(), "experiment config whose /table section gives radii and convention "
       "(flags override it)")
      ("radii", po::value<std::string>(),
       "table columns, l2 radii in [0,1]-pixel units: a comma list (0,0.5,1), start:stop:step (0:2.5:0.25, stop "
       "included) or a paper grid: cifar10 (0 to 2.5 step 0.25) or imagenet (0, 0.5, 1.0, 1.5, 2.0). "
       "Default: /table/radii, else cifar10")
      ("convention", po::value<std::string>(),
       "inclusive (radius >= r, Cohen et al.), strict (radius > r, the Dual RS paper) or both (one table each). "
       "Default: /table/convention, else both")
      ("names", po::value<std::string>(),
       "comma list of row names, one per input (default: each file's method; a method found in several files "
       "gets its folder appended)");
  add_common_options(options);
  po::positional_options_description positional;
  positional.add("inputs", -1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm,
                  {"RESULT.h5... --out DIR [--radii R] [--convention C] [--names N] [--config CONFIG]",
                  "Certified accuracy at each radius (the Dual RS paper's Table 2: rows = method with its sigma\n"
                  "or Sigma, columns = radii), clean accuracy, abstain rate and ACR; the best value per column\n"
                  "is marked (bold; 'best' column in CSV), and a caption names the convention, the number of\n"
                  "examples and n0 / n / alpha, and where the files differ. The Markdown table is also printed.",
                  "dualrs table runs/mnist_dual_rs/certify_*/certify.h5 -o runs/mnist_dual_rs/tables --radii cifar10 "
                  "--convention strict"})) {
    return 0;
  }
  TableConfig table;
  std::vector<std::string> names;
  inv.ctx->agreed([&] {
    if (vm.count("config")) table = ExperimentConfig::load(vm["config"].as<std::string>()).table();
    if (vm.count("radii")) {
      const std::string text = vm["radii"].as<std::string>();
      if (text == "cifar10" || text == "imagenet") {
        table.radii.clear();
        table.radii_preset = text;
      } else {
        table.radii = parse_number_list(text, "--radii");
        for (std::size_t i = 1; i < table.radii.size(); ++i) {
          if (!(table.radii[i] > table.radii[i - 1])) {
            throw ConfigError("command line", "--radii", "radii must be strictly increasing, got '" + text + "'");
          }
        }
      }
    }
    if (vm.count("convention")) table.convention = vm["convention"].as<std::string>();
    if (vm.count("names")) {
      std::stringstream ss(vm["names"].as<std::string>());
      for (std::string name; std::getline(ss, name, ',');) names.push_back(name);
    }
    try {
      report::table_conventions(table.convention);
    } catch (const ConfigError&) {
      throw ConfigError("command line", "--convention", "must be inclusive, strict or both, got '" + table.convention + "'");
    }
  });
  const auto inputs = vm.count("inputs") ? vm["inputs"].as<std::vector<std::string>>() : std::vector<std::string>{};
  run_table(*inv.ctx, inputs, table, vm["out"].as<std::string>(), names);
  return 0;
}

}  // namespace dualrs::app

#include "dualrs/report/analyses.h"

namespace dualrs::app {

namespace {
void analyze_on_this_rank(const std::vector<std::string>& inputs, const std::string& out_dir, Verbosity verbosity) {
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
}  // namespace

void run_analyze(StageContext& ctx, const std::vector<std::string>& inputs, const std::string& out_dir) {
  ctx.on_root([&] { analyze_on_this_rank(inputs, out_dir, ctx.verbosity); });
}

int cmd_analyze(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()
      ("inputs", po::value<std::vector<std::string>>()->multitoken(),
       "certify.h5 files (positional): the global-sigma results for every sigma of Sigma, over the same examples "
       "as one Dual RS result; other results are ignored")
      ("out,o", po::value<std::string>()->required(),
       "output folder: optimal_sigma_distribution.csv, delta_radius_summary.csv, sigma_choice_confusion.csv");
  add_common_options(options);
  po::positional_options_description positional;
  positional.add("inputs", -1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm,
                  {"RESULT.h5... --out DIR",
                   "The analyses that explain Dual RS (DualRS Fig. 1, Fig. 5; METHOD.md §8), as CSV: the optimal\n"
                   "sigma per example (largest correct global-sigma radius, ties -> smaller sigma) vs the\n"
                   "estimator's choice (distribution and confusion matrix), and summaries of Delta R_c =\n"
                   "R_c* - R_c and Delta R_sigma = R_sigma - R_c (radii in l2 [0,1]-pixel units).\n"
                   "'dualrs plot' draws the same analyses.",
                   "dualrs analyze runs/dual/certify_*/certify.h5 -o runs/dual"})) {
    return 0;
  }
  run_analyze(*inv.ctx, vm.count("inputs") ? vm["inputs"].as<std::vector<std::string>>() : std::vector<std::string>{},
              vm["out"].as<std::string>());
  return 0;
}

}  // namespace dualrs::app
