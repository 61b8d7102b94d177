#pragma once
/// \file
/// The comparison table researchers publish (DualRS Table 2; docs/method.md §10): one row per
/// result file (the method with its σ or Σ), one column per radius, then clean accuracy,
/// abstain rate and ACR; the best value of each column marked; a caption naming the radius
/// convention, the number of examples and n0 / n / α, and saying where the files differ in
/// these. Rendered as Markdown, LaTeX (booktabs) and CSV.

#include <cstdint>
#include <string>
#include <vector>

#include "dualrs/io/result_files.h"
#include "dualrs/report/certified_accuracy.h"

namespace dualrs::report {

/// One row of the wide table: one result file.
struct WideRow {
  std::string method;  ///< row name: the file's `method` attribute unless the caller renamed it
  /// The noise the method used: "0.25" for a global σ, "{0.25, 0.5, 1.0}" for the Σ a
  /// per-input method (Dual RS, Multiscale) chooses from, "" when the file names neither.
  std::string noise;
  io::ResultInfo info;                      ///< the file's attributes (n0, n, α, σ_e, dataset, ...)
  std::int64_t num_examples = 0;
  std::vector<double> certified_accuracy;   ///< per radius: fraction of all examples in [0, 1]
  double clean_accuracy = 0.0;              ///< correct and not abstained, fraction
  double abstain_rate = 0.0;                ///< abstained, fraction
  double acr = 0.0;                         ///< average certified radius (ℓ2, [0,1]-pixel units)
  /// Mean forward passes per input (n_used + n_used_estimator); −1 when the file predates them.
  double forward_passes = -1.0;
  /// Per radius: this row holds the column's largest value (ties: every such row), unless that
  /// value is 0, in which case no row is marked.
  std::vector<bool> best_radius;
  bool best_clean = false;  ///< largest clean accuracy (same rule)
  bool best_acr = false;    ///< largest ACR (same rule); the abstain rate is never marked
  /// The base classifier the row's file certified: the last two parts of the resolved
  /// config's /model/checkpoint (or /model/torchscript) path ("train_base/model.pt"),
  /// "experts" for routing files, "" when the file records neither.
  std::string classifier;
  /// The row's group, as in DualRS Table 2: "adaptive fine-tuning" for a Dual RS row whose
  /// classifier no non-Dual-RS row used (the fine-tuned one), "off-the-shelf" for every other
  /// row; every row "" unless the table holds Dual RS rows of both kinds.
  std::string group;
};

/// A wide table for one convention.
struct WideTable {
  Convention convention = Convention::kInclusive;
  std::vector<double> radii;  ///< column radii, ℓ2 in [0,1]-pixel units
  std::vector<WideRow> rows;  ///< input order
  bool same_examples = true;  ///< every file holds exactly the same example indices
};

/// Builds the table from certification results (rows in input order; `info.method` names a
/// row; `classifier` and `group` from each file's resolved config). The best values are compared exactly (fractions of whole examples), not as printed.
/// \throws DataError when `results` is empty.
WideTable make_wide_table(const std::vector<io::CertifyResults>& results, const std::vector<double>& radii,
                          Convention convention);

/// The caption as plain text (Unicode σ, α, ≥): convention, examples, n0 / n / α (or how the
/// files differ), σ_e / α_e / α_c of Dual RS rows, which classifier each row used (when they
/// differ: the Table 2 groups), and what the marks mean.
std::string caption_text(const WideTable& table);

/// Markdown: the caption, a blank line, then a pipe table; percentages with one decimal, ACR
/// with three; the best value per column in **bold**; a row `| *group* |` before each group
/// when the table has groups.
std::string to_markdown(const WideTable& table);

/// LaTeX `table` environment with a booktabs `tabular` (needs `\usepackage{booktabs}`),
/// caption and label `tab:certified-accuracy-<convention>`; best values in `\textbf{}`.
std::string to_latex(const WideTable& table);

/// Wide CSV of one or more tables with the same radii (one row per table row):
/// `convention,method,noise,num_examples,n0,n,alpha,r_<radius>...,clean_accuracy,abstain_rate,acr,best,group,classifier`
/// with fractions at full precision and `best` = the space-separated names of the columns in
/// which the row is best (e.g. `r_0.5 r_0.75 acr`; empty when none).
/// \throws DataError when the tables' radii differ.
std::string wide_csv(const std::vector<WideTable>& tables);

/// Row names that are unique: a method that occurs in several files gets the name of each
/// file's folder appended (`dual_rs [run_a]`); `sources` are the file paths, same order.
std::vector<std::string> unique_row_names(const std::vector<std::string>& methods, const std::vector<std::string>& sources);

}  // namespace dualrs::report
