// The table stage: certified-accuracy tables from certification result files (the Dual RS
// paper's Table 2 layout; docs/method.md §10).

#include <filesystem>
#include <iostream>
#include <sstream>

#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/result_files.h"
#include "dualrs/pipeline/stage.h"
#include "dualrs/pipeline/stage_context.h"
#include "dualrs/report/certified_accuracy.h"
#include "dualrs/report/wide_table.h"

namespace dualrs::pipeline {

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

class TableStage : public Stage {
 public:
  std::string name() const override { return "table"; }
  std::string summary() const override { return "certified-accuracy tables (Markdown, LaTeX, CSV) from result files"; }
  HelpText help() const override {
    return {"RESULT.h5... --out DIR [--radii R] [--convention C] [--names N] [--config CONFIG]",
            "Certified accuracy at each radius (the Dual RS paper's Table 2: rows = method with its sigma\n"
            "or Sigma, columns = radii), clean accuracy, abstain rate and ACR; the best value per column\n"
            "is marked (bold; 'best' column in CSV), and a caption names the convention, the number of\n"
            "examples and n0 / n / alpha, and where the files differ. The Markdown table is also printed.",
            "dualrs table runs/mnist_dual_rs/certify_*/certify.h5 -o runs/mnist_dual_rs/tables --radii cifar10 "
            "--convention strict"};
  }
  std::string config_help() const override { return "experiment config whose /table section gives radii and convention (flags override it)"; }
  std::string inputs_help() const override {
    return "certify.h5 result files or stage folders holding one (positional), one table row each, in this order";
  }
  std::string out_help() const override {
    return "output folder: certified_accuracy.csv (tidy: one row per method, convention and radius), "
           "certified_accuracy_wide.csv, certified_accuracy.md, certified_accuracy.tex (booktabs), summary.csv "
           "(data_schemas/reports.md)";
  }
  std::vector<std::string> outputs() const override {
    return {"certified_accuracy.csv", "certified_accuracy_wide.csv", "certified_accuracy.md", "certified_accuracy.tex", "summary.csv"};
  }
  std::vector<std::string> sections() const override { return {"table"}; }
  std::vector<Flag> flags() const override {
    return {
        {"radii", FlagType::kString, "",
         "table columns, l2 radii in [0,1]-pixel units: a comma list (0,0.5,1), start:stop:step (0:2.5:0.25, stop "
         "included) or a paper grid: cifar10 (0 to 2.5 step 0.25) or imagenet (0, 0.5, 1.0, 1.5, 2.0). "
         "Default: /table/radii, else cifar10"},
        {"convention", FlagType::kString, "",
         "inclusive (radius >= r, Cohen et al.), strict (radius > r, the Dual RS paper) or both (one table each). "
         "Default: /table/convention, else both"},
        {"names", FlagType::kString, "",
         "comma list of row names, one per input (default: each file's method; a method found in several files "
         "gets its folder appended)"},
    };
  }
  StageTraits traits() const override {
    StageTraits t;
    t.root_only = true;
    t.config = ConfigUse::kOptional;
    t.takes_inputs = true;
    t.slurm_template = "table";
    return t;
  }
  void validate(const ExperimentConfig& config, const std::vector<std::string>& inputs,
                std::vector<ConfigIssue>& issues) const override {
    if (inputs.empty()) issues.push_back({"/inputs", "a table stage needs inputs"});
    collect_issues(issues, [&] { report::table_radii(config.table()); });
  }
  void run(StageContext& ctx, const StageRun& run) const override {
    TableConfig table;
    std::vector<std::string> names;
    ctx.agreed([&] {
      table = run.config.table();
    if (run.args.count("radii")) {
      const std::string text = run.args.at("radii");
      if (text == "cifar10" || text == "imagenet") {
        table.radii.clear();
        table.radii_preset = text;
      } else {
        table.radii = parse_number_list(text, "--radii");
        if (table.radii.front() < 0) {
          throw ConfigError("command line", "--radii", "radii are distances, >= 0, got '" + text + "'");
        }
        for (std::size_t i = 1; i < table.radii.size(); ++i) {
          if (!(table.radii[i] > table.radii[i - 1])) {
            throw ConfigError("command line", "--radii", "radii must be strictly increasing, got '" + text + "'");
          }
        }
      }
    }
    if (run.args.count("convention")) table.convention = parse_table_convention(run.args.at("convention"), "--convention", "command line");
    if (run.args.count("names")) {
      std::stringstream ss(run.args.at("names"));
      for (std::string name; std::getline(ss, name, ',');) names.push_back(name);
    }
    });
    ctx.on_root([&] { table_on_this_rank(run.inputs, table, run.out_dir, ctx.verbosity, names); });
  }
};

}  // namespace

std::unique_ptr<Stage> make_table_stage() { return std::make_unique<TableStage>(); }

}  // namespace dualrs::pipeline
