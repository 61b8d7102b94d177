// The analyze stage: the analyses that explain Dual RS, as CSV (DualRS Fig. 1, Fig. 5;
// docs/method.md §10).

#include <filesystem>
#include <iostream>

#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/result_files.h"
#include "dualrs/pipeline/stage.h"
#include "dualrs/pipeline/stage_context.h"
#include "dualrs/report/analyses.h"
#include "dualrs/report/certified_accuracy.h"

namespace dualrs::pipeline {

namespace {
void analyze_on_this_rank(const std::vector<std::string>& inputs, const std::string& out_dir, const TableConfig& table,
                          Verbosity verbosity) {
  std::vector<io::CertifyResults> global;
  std::vector<io::CertifyResults> dual;
  for (const auto& path : inputs) {
    io::CertifyResults r = io::read_certify_results(path);
    if (r.info.sigma_e > 0) dual.push_back(std::move(r));
    else if (r.info.sigma_candidates.empty()) global.push_back(std::move(r));
  }
  if (dual.empty()) throw ConfigError("analyze", "inputs", "needs a Dual RS result among the inputs, got none");
  io::ensure_directory(out_dir);
  const std::filesystem::path dir(out_dir);
  if (dual.size() > 1) {
    // An ablation (docs/method.md §10.3): one row per Dual RS result, each against its own
    // reference runs.
    std::vector<report::AblationRow> rows;
    const std::vector<double> radii = report::table_radii(table);
    for (const report::Convention convention : report::table_conventions(table.convention)) {
      for (const io::CertifyResults& d : dual) {
        rows.push_back(report::ablation_row(d, report::analyze_sigma_choice(global, d), radii, convention));
      }
    }
    const std::string title = "Ablation " + std::filesystem::path(out_dir).filename().string();
    io::write_file_atomic((dir / "ablation_table.csv").string(), report::ablation_csv(rows, radii));
    io::write_file_atomic((dir / "ablation_table.md").string(), report::ablation_markdown(rows, radii, title));
    if (verbosity != Verbosity::kQuiet) std::cout << report::ablation_markdown(rows, radii, title);
    return;
  }
  const report::SigmaAnalysis a = report::analyze_sigma_choice(global, dual.front());
  io::write_file_atomic((dir / "optimal_sigma_distribution.csv").string(), report::sigma_distribution_csv(a));
  io::write_file_atomic((dir / "delta_radius_summary.csv").string(), report::delta_summary_csv(a));
  io::write_file_atomic((dir / "sigma_choice_confusion.csv").string(), report::confusion_csv(a));
  const std::vector<report::DiagnosisRow> diagnosis =
      report::diagnose(a, report::table_radii(table), report::table_conventions(table.convention));
  io::write_file_atomic((dir / "dual_rs_diagnosis.csv").string(), report::diagnosis_csv(diagnosis));
  if (a.reference == report::ReferenceRuns::kGlobalSigma) {
    std::cerr << "dualrs analyze: warning: R_c* comes from ordinary global-sigma results ("
              << a.reference_methods.front() << ", ...), not from the Dual RS classifier on its own copies; Delta R_c "
              << "then mixes classifiers, alpha and Monte Carlo noise and may be negative. Certify the Dual RS "
              << "classifier with /certify/streams \"dual_rs_classifier\" at every sigma (docs/method.md 10.2).\n";
  }
  if (verbosity != Verbosity::kQuiet) {
    std::cout << "optimal sigma vs estimator choice (R_c* from " << report::to_string(a.reference) << " results):\n"
              << report::sigma_distribution_csv(a) << '\n'
              << report::delta_summary_csv(a) << '\n'
              << "where Dual RS stands against the oracle:\n"
              << report::diagnosis_csv(diagnosis);
  }
}

class AnalyzeStage : public Stage {
 public:
  std::string name() const override { return "analyze"; }
  std::string summary() const override { return "optimal sigma, Delta R_c / Delta R_sigma, Dual RS vs the oracle sigma (CSV)"; }
  HelpText help() const override {
    return {"RESULT.h5... --out DIR",
            "The analyses that explain Dual RS (DualRS Fig. 1, Fig. 5, 6.2), as CSV: the optimal\n"
            "sigma per example (largest correct per-sigma radius, ties -> smaller sigma) vs the\n"
            "estimator's choice (distribution and confusion matrix); summaries of Delta R_c =\n"
            "R_c* - R_c and Delta R_sigma = R_sigma - R_c; and at each table radius Dual RS's\n"
            "certified accuracy next to the oracle (best sigma per example, picked afterwards:\n"
            "an upper bound, not a method) and the shares lost to R_sigma, to R_c or to both.\n"
            "R_c* is read from the Dual RS classifier certified at every sigma with\n"
            "/certify/streams \"dual_rs_classifier\" when the inputs hold such files (then\n"
            "Delta R_c >= 0 exactly with fixed sampling), else from global-sigma results (with a\n"
            "warning). Radii in l2 [0,1]-pixel units; /table/radii and /table/convention from\n"
            "--config when given. 'dualrs plot' draws the same analyses.\n"
            "With several Dual RS results (an ablation) it writes instead ablation_table.csv/.md:\n"
            "one row per result (named by its method) with certified accuracy at the radii, ACR,\n"
            "sigma-selection accuracy, the share bound by R_sigma, mean Delta R_c and the\n"
            "oracle's ACR, each against the reference runs that hold its copies.",
            "dualrs analyze runs/dual/certify_*/certify.h5 -o runs/dual"};
  }
  std::string config_help() const override {
    return "experiment config whose /table section gives the radii and convention of dual_rs_diagnosis.csv";
  }
  std::string inputs_help() const override {
    return "certify.h5 files (positional): one Dual RS result and, over the same examples, the per-sigma results "
           "at every sigma of Sigma (streams dual_rs_classifier, or ordinary global-sigma results); other results are "
           "ignored";
  }
  std::string out_help() const override {
    return "output folder: optimal_sigma_distribution.csv, delta_radius_summary.csv, sigma_choice_confusion.csv, "
           "dual_rs_diagnosis.csv (one Dual RS result) or ablation_table.csv, ablation_table.md (several)";
  }
  std::vector<std::string> outputs() const override {
    return {"optimal_sigma_distribution.csv", "delta_radius_summary.csv", "sigma_choice_confusion.csv",
            "dual_rs_diagnosis.csv", "ablation_table.csv", "ablation_table.md"};
  }
  std::vector<std::string> sections() const override { return {"table"}; }
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
    if (inputs.empty()) issues.push_back({"/inputs", "a analyze stage needs inputs"});
    collect_issues(issues, [&] { report::table_radii(config.table()); });
  }
  void run(StageContext& ctx, const StageRun& run) const override {
    TableConfig table;
    ctx.agreed([&] { table = run.config.table(); });
    ctx.on_root([&] { analyze_on_this_rank(run.inputs, run.out_dir, table, ctx.verbosity); });
  }
};

}  // namespace

std::unique_ptr<Stage> make_analyze_stage() { return std::make_unique<AnalyzeStage>(); }

}  // namespace dualrs::pipeline
