#include "dualrs/report/wide_table.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "dualrs/core/config.h"
#include "dualrs/core/error.h"

namespace dualrs::report {
namespace {

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}


// "{0.25, 0.5, 1.0}" for Σ (with the given separator and braces), "0.25" for a global σ.
std::string noise_of(const io::ResultInfo& info, const char* separator = ", ", const char* open = "{",
                     const char* close = "}") {
  if (!info.sigma_candidates.empty()) {
    std::string out = open;
    for (std::size_t i = 0; i < info.sigma_candidates.size(); ++i) {
      out += (i ? separator : "") + format_decimal(info.sigma_candidates[i]);
    }
    return out + close;
  }
  return info.sigma > 0 ? format_decimal(info.sigma) : std::string();
}

// The classifier a result file certified (WideRow::classifier), from its resolved config.
std::string classifier_of(const nlohmann::json& provenance) {
  const auto config = provenance.find("config");
  if (config == provenance.end() || !config->is_object()) return "";
  const auto model = config->find("model");
  if (model != config->end() && model->is_object()) {
    for (const char* key : {"checkpoint", "torchscript"}) {
      const auto path = model->find(key);
      if (path == model->end() || !path->is_string() || path->get<std::string>().empty()) continue;
      const std::filesystem::path p = std::filesystem::path(path->get<std::string>()).lexically_normal();
      const std::string parent = p.parent_path().filename().string();
      return parent.empty() ? p.filename().string() : parent + "/" + p.filename().string();
    }
  }
  const auto dual = config->find("dual");
  if (dual != config->end() && dual->is_object() && dual->contains("experts") && (*dual)["experts"].is_array() &&
      !(*dual)["experts"].empty()) {
    return "experts";
  }
  return "";
}

// Marks the rows holding a column's largest value, unless that value is 0.
void mark_best(std::vector<WideRow>& rows, const std::function<double(const WideRow&)>& value,
               const std::function<void(WideRow&, bool)>& mark) {
  double best = 0.0;
  for (const auto& row : rows) best = std::max(best, value(row));
  for (auto& row : rows) mark(row, best > 0 && value(row) == best);
}

// How a caption writes symbols: plain text (Unicode) or LaTeX.
struct Style {
  const char* sigma;
  const char* sigma_e;
  const char* alpha;
  const char* alpha_e;
  const char* alpha_c;
  const char* n0;
  const char* n;
  const char* geq;
  const char* gt;
  const char* ell2;
  const char* percent;
  const char* r;
  std::string (*escape)(const std::string&);
};

std::string no_escape(const std::string& s) { return s; }

std::string latex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '_': out += "\\_"; break;
      case '%': out += "\\%"; break;
      case '&': out += "\\&"; break;
      case '#': out += "\\#"; break;
      case '$': out += "\\$"; break;
      case '{': out += "\\{"; break;
      case '}': out += "\\}"; break;
      case '~': out += "\\textasciitilde{}"; break;
      case '^': out += "\\textasciicircum{}"; break;
      case '\\': out += "\\textbackslash{}"; break;
      default: out += c;
    }
  }
  return out;
}

const Style kPlain{"σ", "σ_e", "α", "α_e", "α_c", "n0", "n", "≥", ">", "ℓ2", "%", "r", no_escape};
const Style kLatex{"$\\sigma$", "$\\sigma_e$", "$\\alpha$", "$\\alpha_e$", "$\\alpha_c$", "$n_0$", "$n$", "$\\geq$", "$>$",
                   "$\\ell_2$", "\\%", "$r$", latex_escape};

// "n = 1000" when every row agrees, else "n differs: 1000 (a, b), 10000 (c)".
std::string describe(const std::vector<WideRow>& rows, const std::string& name, const Style& style,
                     const std::function<std::string(const WideRow&)>& value) {
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  for (const auto& row : rows) {
    const std::string v = value(row);
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == v; });
    if (it == groups.end()) groups.push_back({v, {row.method}});
    else it->second.push_back(row.method);
  }
  if (groups.size() == 1) return name + " = " + groups.front().first;
  std::string out = name + " differs between files: ";
  for (std::size_t g = 0; g < groups.size(); ++g) {
    out += (g ? "; " : "") + groups[g].first + " (";
    for (std::size_t m = 0; m < groups[g].second.size(); ++m) out += (m ? ", " : "") + style.escape(groups[g].second[m]);
    out += ")";
  }
  return out;
}

std::string caption(const WideTable& t, const Style& s) {
  std::ostringstream os;
  const bool inclusive = t.convention == Convention::kInclusive;
  os << "Certified accuracy (" << s.percent << ") at " << s.ell2 << " radius " << s.r << ", " << to_string(t.convention)
     << " convention (radius " << (inclusive ? s.geq : s.gt) << " " << s.r << ", as in "
     << (inclusive ? "Cohen et al.'s analysis" : "the Dual RS paper's tables") << "). ";
  std::set<std::int64_t> sizes;
  for (const auto& row : t.rows) sizes.insert(row.num_examples);
  if (sizes.size() == 1) {
    os << *sizes.begin() << " examples";
    std::set<std::string> sources;
    for (const auto& row : t.rows) sources.insert(row.info.dataset + " " + row.info.split);
    if (sources.size() == 1 && !t.rows.front().info.dataset.empty()) {
      os << " of " << s.escape(t.rows.front().info.dataset) << " (" << s.escape(t.rows.front().info.split) << " split)";
    }
    if (!t.same_examples) os << ", but the files do not hold the same examples";
  } else {
    os << describe(t.rows, "the number of examples", s, [](const WideRow& r) { return std::to_string(r.num_examples); });
  }
  os << "; " << describe(t.rows, s.n0, s, [](const WideRow& r) { return std::to_string(r.info.n0); }) << ", "
     << describe(t.rows, s.n, s, [](const WideRow& r) { return std::to_string(r.info.n); }) << ", "
     << describe(t.rows, s.alpha, s, [](const WideRow& r) { return format_decimal(r.info.alpha); }) << ".";
  for (const auto& row : t.rows) {
    if (row.info.sigma_e > 0) {
      os << " " << s.escape(row.method) << ": " << s.sigma_e << " = " << format_decimal(row.info.sigma_e) << ", "
         << s.alpha_e << " = " << format_decimal(row.info.alpha_e) << ", " << s.alpha_c << " = "
         << format_decimal(row.info.alpha_c) << ".";
    }
  }
  if (!t.rows.front().group.empty()) {
    os << " " << describe(t.rows, "Classifier", s, [](const WideRow& r) {
      return r.group + ": " + (r.classifier.empty() ? std::string("not recorded") : r.classifier);
    }) << ".";
  }
  os << " "
     << describe(t.rows, "Noise", s, [](const WideRow& r) {
          return (r.info.noise == "grid" ? std::string("grid-rounded Gaussian") : std::string("float Gaussian")) +
                 (r.info.sampling == "staged" ? ", staged looks" : ", fixed n");
        })
     << ".";
  os << " Best value per column in bold; clean = clean accuracy (" << s.percent << "), abstain = abstain rate ("
     << s.percent << "), ACR = average certified radius, passes = mean forward passes per input.";
  return os.str();
}

}  // namespace

WideTable make_wide_table(const std::vector<io::CertifyResults>& results, const std::vector<double>& radii,
                          Convention convention) {
  DUALRS_CHECK(!results.empty(), DataError, "a table needs at least one result file");
  WideTable t;
  t.convention = convention;
  t.radii = radii;
  std::vector<std::int64_t> first_idx;
  for (const auto& rec : results.front().records) first_idx.push_back(rec.idx);
  for (const auto& res : results) {
    WideRow row;
    row.method = res.info.method;
    row.noise = noise_of(res.info);
    row.info = res.info;
    row.num_examples = static_cast<std::int64_t>(res.records.size());
    row.classifier = classifier_of(res.provenance);
    for (double r : radii) row.certified_accuracy.push_back(certified_accuracy(res.records, r, convention));
    const MethodSummary summary = summarize(res);
    row.clean_accuracy = summary.clean_accuracy;
    row.abstain_rate = summary.abstain_rate;
    row.acr = summary.acr;
    double passes = 0;
    for (const auto& rec : res.records) {
      if (rec.n_used < 0) {
        passes = -1;
        break;
      }
      passes += static_cast<double>(rec.n_used + std::max<std::int64_t>(rec.n_used_estimator, 0));
    }
    if (passes >= 0 && !res.records.empty()) row.forward_passes = passes / static_cast<double>(res.records.size());
    row.best_radius.assign(radii.size(), false);
    std::vector<std::int64_t> idx;
    for (const auto& rec : res.records) idx.push_back(rec.idx);
    t.same_examples = t.same_examples && idx == first_idx;
    t.rows.push_back(std::move(row));
  }
  // DualRS Table 2's groups: a Dual RS row (σ_e > 0) on a classifier that no other row used
  // is "adaptive fine-tuning", every other row "off-the-shelf"; only when the table also has a
  // Dual RS row on one of the other rows' classifiers.
  std::set<std::string> base_classifiers;
  for (const WideRow& r : t.rows) {
    if (!(r.info.sigma_e > 0)) base_classifiers.insert(r.classifier);
  }
  auto fine_tuned = [&](const WideRow& r) { return r.info.sigma_e > 0 && base_classifiers.count(r.classifier) == 0; };
  const bool grouped =
      std::any_of(t.rows.begin(), t.rows.end(), fine_tuned) &&
      std::any_of(t.rows.begin(), t.rows.end(), [&](const WideRow& r) { return r.info.sigma_e > 0 && !fine_tuned(r); });
  if (grouped) {
    for (WideRow& r : t.rows) r.group = fine_tuned(r) ? "adaptive fine-tuning" : "off-the-shelf";
  }
  for (std::size_t c = 0; c < radii.size(); ++c) {
    mark_best(t.rows, [c](const WideRow& r) { return r.certified_accuracy[c]; },
              [c](WideRow& r, bool b) { r.best_radius[c] = b; });
  }
  mark_best(t.rows, [](const WideRow& r) { return r.clean_accuracy; }, [](WideRow& r, bool b) { r.best_clean = b; });
  mark_best(t.rows, [](const WideRow& r) { return r.acr; }, [](WideRow& r, bool b) { r.best_acr = b; });
  return t;
}

std::string caption_text(const WideTable& table) { return caption(table, kPlain); }

std::string to_markdown(const WideTable& t) {
  auto cell = [](const std::string& text, bool best) { return best ? "**" + text + "**" : text; };
  std::ostringstream os;
  os << caption(t, kPlain) << "\n\n| method | σ or Σ |";
  for (double r : t.radii) os << ' ' << format_decimal(r) << " |";
  os << " clean | abstain | ACR | passes |\n|---|---|";
  for (std::size_t i = 0; i < t.radii.size(); ++i) os << "---:|";
  os << "---:|---:|---:|---:|\n";
  std::string group;
  for (const auto& row : t.rows) {
    if (row.group != group) {
      group = row.group;
      os << "| *" << group << "* |\n";
    }
    os << "| " << row.method << " | " << row.noise << " |";
    for (std::size_t c = 0; c < t.radii.size(); ++c) {
      os << ' ' << cell(fixed(100.0 * row.certified_accuracy[c], 1), row.best_radius[c]) << " |";
    }
    os << ' ' << cell(fixed(100.0 * row.clean_accuracy, 1), row.best_clean) << " | " << fixed(100.0 * row.abstain_rate, 1)
       << " | " << cell(fixed(row.acr, 3), row.best_acr) << " | "
       << (row.forward_passes >= 0 ? fixed(row.forward_passes, 0) : std::string("–")) << " |\n";
  }
  return os.str();
}

std::string to_latex(const WideTable& t) {
  auto cell = [](const std::string& text, bool best) { return best ? "\\textbf{" + text + "}" : text; };
  const std::size_t nr = t.radii.size();
  std::ostringstream os;
  os << "% dualrs table, " << to_string(t.convention) << " convention; needs \\usepackage{booktabs}\n"
     << "\\begin{table}[t]\n\\centering\n\\caption{" << caption(t, kLatex) << "}\n\\label{tab:certified-accuracy-"
     << to_string(t.convention) << "}\n\\begin{tabular}{ll" << std::string(nr, 'r') << "rrr}\n\\toprule\n"
     << " & & \\multicolumn{" << nr << "}{c}{Certified accuracy (\\%) at radius $r$} & & & \\\\\n"
     << "\\cmidrule(lr){3-" << 2 + nr << "}\n"
     << "Method & $\\sigma$ or $\\Sigma$";
  for (double r : t.radii) os << " & " << format_decimal(r);
  os << " & Clean & Abstain & ACR \\\\\n\\midrule\n";
  std::string group;
  for (const auto& row : t.rows) {
    if (row.group != group) {
      if (!group.empty()) os << "\\midrule\n";
      group = row.group;
      os << "\\multicolumn{" << nr + 5 << "}{l}{\\textit{" << latex_escape(group) << "}} \\\\\n";
    }
    os << latex_escape(row.method) << " & " << latex_escape(row.noise);
    for (std::size_t c = 0; c < nr; ++c) os << " & " << cell(fixed(100.0 * row.certified_accuracy[c], 1), row.best_radius[c]);
    os << " & " << cell(fixed(100.0 * row.clean_accuracy, 1), row.best_clean) << " & " << fixed(100.0 * row.abstain_rate, 1)
       << " & " << cell(fixed(row.acr, 3), row.best_acr) << " \\\\\n";
  }
  os << "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
  return os.str();
}

std::string wide_csv(const std::vector<WideTable>& tables) {
  DUALRS_CHECK(!tables.empty(), DataError, "wide_csv needs at least one table");
  const std::vector<double>& radii = tables.front().radii;
  std::vector<std::string> radius_columns;
  for (double r : radii) radius_columns.push_back("r_" + format_decimal(r));
  std::ostringstream os;
  os << "convention,method,noise,num_examples,n0,n,alpha";
  for (const auto& name : radius_columns) os << ',' << name;
  os << ",clean_accuracy,abstain_rate,acr,best,group,classifier\n";
  for (const auto& t : tables) {
    DUALRS_CHECK(t.radii == radii, DataError, "wide_csv: the tables have different radii");
    for (const auto& row : t.rows) {
      std::vector<std::string> best;
      os << to_string(t.convention) << ',' << csv_field(row.method) << ',' << noise_of(row.info, " ", "", "") << ',' << row.num_examples << ','
         << row.info.n0 << ',' << row.info.n << ',' << format_decimal(row.info.alpha);
      for (std::size_t c = 0; c < radii.size(); ++c) {
        os << ',' << format_decimal(row.certified_accuracy[c]);
        if (row.best_radius[c]) best.push_back(radius_columns[c]);
      }
      if (row.best_clean) best.push_back("clean_accuracy");
      if (row.best_acr) best.push_back("acr");
      os << ',' << format_decimal(row.clean_accuracy) << ',' << format_decimal(row.abstain_rate) << ','
         << format_decimal(row.acr) << ',';
      for (std::size_t b = 0; b < best.size(); ++b) os << (b ? " " : "") << best[b];
      os << ',' << csv_field(row.group) << ',' << csv_field(row.classifier) << '\n';
    }
  }
  return os.str();
}

std::vector<std::string> unique_row_names(const std::vector<std::string>& methods, const std::vector<std::string>& sources) {
  DUALRS_CHECK(methods.size() == sources.size(), DataError, "unique_row_names: ", methods.size(), " methods but ",
               sources.size(), " sources");
  std::map<std::string, std::vector<std::size_t>> by_method;
  for (std::size_t i = 0; i < methods.size(); ++i) by_method[methods[i]].push_back(i);
  std::vector<std::string> names = methods;
  for (const auto& [method, rows] : by_method) {
    if (rows.size() < 2) continue;
    // The shortest tail of the files' folder paths that tells them apart.
    for (int depth = 1; depth <= 64; ++depth) {
      std::set<std::string> seen;
      std::vector<std::string> tails;
      bool whole = true;
      for (std::size_t i : rows) {
        std::filesystem::path folder = std::filesystem::path(sources[i]).lexically_normal().parent_path();
        std::vector<std::string> parts;
        for (const auto& part : folder) parts.push_back(part.string());
        std::string tail;
        const int n = static_cast<int>(parts.size());
        for (int p = std::max(0, n - depth); p < n; ++p) tail += (tail.empty() || tail == "/" ? "" : "/") + parts[p];
        whole = whole && depth >= n;
        tails.push_back(tail.empty() ? sources[i] : tail);
        seen.insert(tails.back());
      }
      if (seen.size() == rows.size() || whole) {
        for (std::size_t k = 0; k < rows.size(); ++k) names[rows[k]] = method + " [" + tails[k] + "]";
        if (seen.size() != rows.size()) {
          for (std::size_t k = 0; k < rows.size(); ++k) names[rows[k]] = method + " [" + std::to_string(k + 1) + "]";
        }
        break;
      }
    }
  }
  return names;
}

}  // namespace dualrs::report
