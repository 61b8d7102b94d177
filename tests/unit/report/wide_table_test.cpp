// The wide comparison table on hand-made results: values, best marks, captions and renderings.

#include "dualrs/report/wide_table.h"

#include <gtest/gtest.h>

#include "dualrs/core/error.h"
#include "report_test_util.h"

namespace dualrs::report {
namespace {

using testing::rec;

io::CertifyResults result(const std::string& method, double sigma, std::vector<CertifyRecord> records) {
  io::CertifyResults r;
  r.info.method = method;
  r.info.sigma = sigma;
  r.info.n0 = 100;
  r.info.n = 1000;
  r.info.alpha = 0.001;
  r.info.dataset = "mnist";
  r.info.split = "test";
  r.records = std::move(records);
  return r;
}

// Four examples each. a: radii 0.5, 0.25 correct, one wrong, one abstained; b: 1.0 and 0.25
// correct, two abstained; c: all wrong.
std::vector<io::CertifyResults> three() {
  auto a = result("global_sigma_0.25", 0.25, {rec(0, 1, 1, 0.5), rec(1, 2, 2, 0.25), rec(2, 3, 4, 0.9), rec(3, 1, kAbstain, 0)});
  auto b = result("dual_rs", 0, {rec(0, 1, 1, 1.0), rec(1, 2, 2, 0.25), rec(2, 3, kAbstain, 0), rec(3, 1, kAbstain, 0)});
  b.info.sigma_candidates = {0.25, 0.5, 1.0};
  b.info.sigma_e = 1.0;
  b.info.alpha_e = 0.0005;
  b.info.alpha_c = 0.0005;
  auto c = result("global_sigma_1.0", 1.0, {rec(0, 1, 2, 0.5), rec(1, 2, 3, 0.5), rec(2, 3, 4, 0.5), rec(3, 1, 2, 0.5)});
  return {a, b, c};
}

TEST(WideTableTest, ValuesAndBestMarks) {
  const WideTable t = make_wide_table(three(), {0.0, 0.25, 0.5, 1.0, 2.0}, Convention::kInclusive);
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_TRUE(t.same_examples);
  EXPECT_EQ(t.rows[0].certified_accuracy, (std::vector<double>{0.5, 0.5, 0.25, 0.0, 0.0}));
  EXPECT_EQ(t.rows[1].certified_accuracy, (std::vector<double>{0.5, 0.5, 0.25, 0.25, 0.0}));
  EXPECT_EQ(t.rows[0].best_radius, (std::vector<bool>{true, true, true, false, false}));
  EXPECT_EQ(t.rows[1].best_radius, (std::vector<bool>{true, true, true, true, false}));  // ties: both marked
  EXPECT_EQ(t.rows[2].best_radius, (std::vector<bool>(5, false)));  // all 0 at r = 2: nobody marked
  EXPECT_DOUBLE_EQ(t.rows[1].acr, (1.0 + 0.25) / 4);
  EXPECT_TRUE(t.rows[1].best_acr);
  EXPECT_FALSE(t.rows[0].best_acr);
  EXPECT_DOUBLE_EQ(t.rows[1].abstain_rate, 0.5);
  EXPECT_EQ(t.rows[0].noise, "0.25");
  EXPECT_EQ(t.rows[1].noise, "{0.25, 0.5, 1.0}");
}

// DualRS Table 2: a Dual RS row on a classifier no other row used is "adaptive fine-tuning",
// the rest "off-the-shelf"; the caption names each group's classifier and the renderings head
// each group. Without a Dual RS row of each kind there are no groups.
TEST(WideTableTest, GroupsRowsByTheClassifierTheyCertified) {
  std::vector<io::CertifyResults> three_files = three();  // a (global), b (dual_rs), c (global)
  io::CertifyResults off = three_files[1];
  off.info.method = "dual_rs_off_the_shelf";
  three_files[0].provenance["config"]["model"]["checkpoint"] = "runs/job/train_base/model.pt";
  three_files[2].provenance["config"]["model"]["checkpoint"] = "runs/job/train_base/./model.pt";
  off.provenance["config"]["model"]["checkpoint"] = "runs/job/train_base/model.pt";
  three_files[1].provenance["config"]["model"]["checkpoint"] = "runs/job/finetune/model.pt";
  const std::vector<io::CertifyResults> files = {three_files[0], three_files[2], off, three_files[1]};
  const WideTable t = make_wide_table(files, {0.0, 0.5}, Convention::kStrict);
  EXPECT_EQ(t.rows[0].classifier, "train_base/model.pt");
  EXPECT_EQ(t.rows[1].classifier, "train_base/model.pt");
  EXPECT_EQ(t.rows[3].classifier, "finetune/model.pt");
  EXPECT_EQ(t.rows[0].group, "off-the-shelf");
  EXPECT_EQ(t.rows[2].group, "off-the-shelf");
  EXPECT_EQ(t.rows[3].group, "adaptive fine-tuning");
  const std::string caption = caption_text(t);
  EXPECT_NE(caption.find("off-the-shelf: train_base/model.pt (global_sigma_0.25, global_sigma_1.0, dual_rs_off_the_shelf)"),
            std::string::npos)
      << caption;
  EXPECT_NE(caption.find("adaptive fine-tuning: finetune/model.pt (dual_rs)"), std::string::npos) << caption;
  const std::string md = to_markdown(t);
  EXPECT_LT(md.find("| *off-the-shelf* |"), md.find("| global_sigma_0.25 |"));
  EXPECT_LT(md.find("| dual_rs_off_the_shelf |"), md.find("| *adaptive fine-tuning* |"));
  EXPECT_LT(md.find("| *adaptive fine-tuning* |"), md.find("| dual_rs |"));
  EXPECT_NE(to_latex(t).find("\\multicolumn{7}{l}{\\textit{adaptive fine-tuning}}"), std::string::npos);
  const std::string csv = wide_csv({t});
  EXPECT_NE(csv.find(",adaptive fine-tuning,finetune/model.pt\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",off-the-shelf,train_base/model.pt\n"), std::string::npos) << csv;

  // Only the fine-tuned Dual RS row (as before this grouping existed): no groups.
  const WideTable one = make_wide_table({three_files[0], three_files[1]}, {0.0}, Convention::kStrict);
  EXPECT_EQ(one.rows[1].group, "");
  EXPECT_EQ(caption_text(one).find("Classifier"), std::string::npos);
  EXPECT_EQ(to_markdown(one).find("| *off-the-shelf* |"), std::string::npos);
}

TEST(WideTableTest, StrictConventionExcludesTheRadiusItself) {
  const WideTable t = make_wide_table(three(), {0.25, 1.0}, Convention::kStrict);
  EXPECT_EQ(t.rows[0].certified_accuracy, (std::vector<double>{0.25, 0.0}));
  EXPECT_EQ(t.rows[1].certified_accuracy, (std::vector<double>{0.25, 0.0}));
}

TEST(WideTableTest, MarkdownBoldsTheBestAndCaptionsTheSettings) {
  const std::string md = to_markdown(make_wide_table(three(), {0.0, 1.0}, Convention::kStrict));
  EXPECT_NE(md.find("strict convention (radius > r"), std::string::npos) << md;
  EXPECT_NE(md.find("4 examples of mnist (test split)"), std::string::npos) << md;
  EXPECT_NE(md.find("n0 = 100, n = 1000, α = 0.001."), std::string::npos) << md;
  EXPECT_NE(md.find("dual_rs: σ_e = 1.0, α_e = 0.0005, α_c = 0.0005."), std::string::npos) << md;
  EXPECT_NE(md.find("| method | σ or Σ | 0.0 | 1.0 | clean | abstain | ACR |"), std::string::npos) << md;
  EXPECT_NE(md.find("| dual_rs | {0.25, 0.5, 1.0} | **50.0** | 0.0 | **50.0** | 50.0 | **0.312** |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| global_sigma_1.0 | 1.0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.000 |"), std::string::npos) << md;
}

TEST(WideTableTest, CaptionSaysWhereFilesDiffer) {
  auto results = three();
  results[2].info.n = 10000;
  results[2].records.pop_back();
  const std::string caption = caption_text(make_wide_table(results, {0.0}, Convention::kInclusive));
  EXPECT_NE(caption.find("the number of examples differs between files: 4 (global_sigma_0.25, dual_rs); 3 (global_sigma_1.0)"),
            std::string::npos)
      << caption;
  EXPECT_NE(caption.find("n differs between files: 1000 (global_sigma_0.25, dual_rs); 10000 (global_sigma_1.0)"),
            std::string::npos)
      << caption;
  EXPECT_NE(caption.find("n0 = 100,"), std::string::npos) << caption;

  results = three();
  results[0].records[3].idx = 7;  // same count, other examples
  const WideTable t = make_wide_table(results, {0.0}, Convention::kInclusive);
  EXPECT_FALSE(t.same_examples);
  EXPECT_NE(caption_text(t).find("but the files do not hold the same examples"), std::string::npos);
}

TEST(WideTableTest, LatexIsBooktabsWithEscapedNames) {
  const std::string tex = to_latex(make_wide_table(three(), {0.0, 0.5}, Convention::kInclusive));
  EXPECT_NE(tex.find("\\begin{tabular}{llrrrrr}"), std::string::npos) << tex;
  EXPECT_NE(tex.find("\\toprule"), std::string::npos);
  EXPECT_NE(tex.find("\\midrule"), std::string::npos);
  EXPECT_NE(tex.find("\\bottomrule"), std::string::npos);
  EXPECT_NE(tex.find("\\cmidrule(lr){3-4}"), std::string::npos) << tex;
  EXPECT_NE(tex.find("global\\_sigma\\_0.25 & 0.25 & \\textbf{50.0} & \\textbf{25.0}"), std::string::npos) << tex;
  EXPECT_NE(tex.find("dual\\_rs & \\{0.25, 0.5, 1.0\\}"), std::string::npos) << tex;
  EXPECT_NE(tex.find("$\\sigma_e$ = 1.0"), std::string::npos) << tex;
  EXPECT_NE(tex.find("\\label{tab:certified-accuracy-inclusive}"), std::string::npos);
  EXPECT_EQ(tex.find("σ"), std::string::npos) << "no raw Unicode in LaTeX";
}

TEST(WideTableTest, CsvHasOneRowPerConventionAndMethodWithABestColumn) {
  const auto results = three();
  const std::string csv = wide_csv({make_wide_table(results, {0.0, 1.0}, Convention::kInclusive),
                                    make_wide_table(results, {0.0, 1.0}, Convention::kStrict)});
  EXPECT_EQ(csv.rfind("convention,method,noise,num_examples,n0,n,alpha,r_0.0,r_1.0,clean_accuracy,abstain_rate,acr,best,group,classifier\n", 0), 0u)
      << csv;
  EXPECT_NE(csv.find("\ninclusive,dual_rs,0.25 0.5 1.0,4,100,1000,0.001,0.5,0.25,0.5,0.5,0.3125,r_0.0 r_1.0 clean_accuracy acr,,\n"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find("\nstrict,global_sigma_1.0,1.0,4,100,1000,0.001,0.0,0.0,0.0,0.0,0.0,,,\n"), std::string::npos) << csv;
  EXPECT_THROW(wide_csv({make_wide_table(results, {0.0}, Convention::kInclusive),
                         make_wide_table(results, {0.5}, Convention::kStrict)}),
               DataError);
}

TEST(WideTableTest, EmptyInputIsRefused) { EXPECT_THROW(make_wide_table({}, {0.0}, Convention::kInclusive), DataError); }

TEST(RowNamesTest, DuplicateMethodsGetTheirFolder) {
  EXPECT_EQ(unique_row_names({"dual_rs", "global_sigma_0.5"}, {"a/x/certify.h5", "b/y/certify.h5"}),
            (std::vector<std::string>{"dual_rs", "global_sigma_0.5"}));
  EXPECT_EQ(unique_row_names({"dual_rs", "dual_rs", "multiscale"},
                             {"runs/a/certify_dual_rs/certify.h5", "runs/b/certify_dual_rs/certify.h5", "runs/a/m/certify.h5"}),
            (std::vector<std::string>{"dual_rs [a/certify_dual_rs]", "dual_rs [b/certify_dual_rs]", "multiscale"}));
  EXPECT_EQ(unique_row_names({"dual_rs", "dual_rs"}, {"one/certify.h5", "two/certify.h5"}),
            (std::vector<std::string>{"dual_rs [one]", "dual_rs [two]"}));
}

TEST(RadiusGridTest, PaperPresets) {
  EXPECT_EQ(radius_preset("cifar10").size(), 11u);
  EXPECT_DOUBLE_EQ(radius_preset("cifar10").back(), 2.5);
  EXPECT_EQ(radius_preset("imagenet"), (std::vector<double>{0.0, 0.5, 1.0, 1.5, 2.0}));
  EXPECT_THROW(radius_preset("svhn"), ConfigError);
  TableConfig table;
  EXPECT_EQ(table_radii(table), radius_preset("cifar10"));
  table.radii_preset = "imagenet";
  EXPECT_EQ(table_radii(table), radius_preset("imagenet"));
  table.radii = {0.1, 0.2};
  EXPECT_EQ(table_radii(table), (std::vector<double>{0.1, 0.2}));
  EXPECT_EQ(table_conventions("both").size(), 2u);
  EXPECT_THROW(table_conventions("loose"), ConfigError);
}

TEST(CsvFieldTest, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(csv_field("dual_rs"), "dual_rs");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
}

}  // namespace
}  // namespace dualrs::report
