// Config validation: every problem reported at once, each with its JSON pointer.

#include "dualrs/core/config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "dualrs/core/error.h"

namespace dualrs {
namespace {
using nlohmann::json;

json valid_config() {
  return json::parse(R"({
    "name": "t",
    "dataset": {"format": "mnist_idx", "images": "/d/i.gz", "labels": "/d/l.gz", "splits": {"test": "/d/test.txt"}},
    "model": {"arch": "mnist_cnn", "num_classes": 10},
    "certify": {"sigma": 0.5, "n0": 10, "n": 100, "alpha": 0.01, "batch_size": 50,
                "selection": {"split": "test", "begin": 0, "end": 20}}
  })");
}

std::vector<ConfigIssue> issues_of(const json& doc) {
  try {
    ExperimentConfig::from_json(doc, "cfg.json");
  } catch (const ConfigError& e) {
    return e.issues();
  }
  return {};
}

bool has_pointer(const std::vector<ConfigIssue>& issues, const std::string& pointer) {
  for (const auto& i : issues) {
    if (i.pointer == pointer) return true;
  }
  return false;
}

TEST(ConfigTest, ValidConfigParsesWithDefaults) {
  json doc = valid_config();
  doc["certify"].erase("n0");
  const auto config = ExperimentConfig::from_json(doc, "cfg.json");
  const CertifyConfig c = config.certify();
  EXPECT_EQ(c.sigma, 0.5);
  EXPECT_EQ(c.n0, 100);  // default
  EXPECT_EQ(c.n, 100);
  EXPECT_EQ(c.selection.end, 20);
  EXPECT_EQ(config.model().arch, "mnist_cnn");
  EXPECT_EQ(config.dataset().splits.at("test"), "/d/test.txt");
}

TEST(ConfigTest, UnknownKeyIsAnErrorNamingTheKey) {
  json doc = valid_config();
  doc["certify"]["sigmaa"] = 0.5;
  const auto issues = issues_of(doc);
  ASSERT_TRUE(has_pointer(issues, "/certify/sigmaa")) << issues.size();
}

TEST(ConfigTest, UnknownTopLevelKey) {
  json doc = valid_config();
  doc["certfy"] = json::object();
  EXPECT_TRUE(has_pointer(issues_of(doc), "/certfy"));
}

TEST(ConfigTest, WrongTypeNamesThePointer) {
  json doc = valid_config();
  doc["certify"]["n"] = "many";
  EXPECT_TRUE(has_pointer(issues_of(doc), "/certify/n"));
}

TEST(ConfigTest, EveryProblemIsReportedAtOnce) {
  json doc = valid_config();
  doc["certify"]["sigma"] = 0.0;
  doc["certify"]["alpha"] = 1.5;
  doc["certify"]["n0"] = 0;
  doc["certify"]["n"] = -3;
  doc["certify"]["batch_size"] = 0;
  const auto issues = issues_of(doc);
  for (const char* p : {"/certify/sigma", "/certify/alpha", "/certify/n0", "/certify/n", "/certify/batch_size"}) {
    EXPECT_TRUE(has_pointer(issues, p)) << p;
  }
}

TEST(ConfigTest, NegativeSigmaAndAlphaZeroRejected) {
  json doc = valid_config();
  doc["certify"]["sigma"] = -0.25;
  doc["certify"]["alpha"] = 0.0;
  const auto issues = issues_of(doc);
  EXPECT_TRUE(has_pointer(issues, "/certify/sigma"));
  EXPECT_TRUE(has_pointer(issues, "/certify/alpha"));
}

TEST(ConfigTest, ErrorMessageNamesSourceAndPointer) {
  json doc = valid_config();
  doc["certify"]["sigma"] = -1;
  try {
    ExperimentConfig::from_json(doc, "configs/x.json");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("configs/x.json"), std::string::npos) << what;
    EXPECT_NE(what.find("/certify/sigma"), std::string::npos) << what;
  }
}

TEST(ConfigTest, ModelNeedsExactlyOneSource) {
  json doc = valid_config();
  doc["model"]["torchscript"] = "/m.pt";
  const auto config = ExperimentConfig::from_json(doc, "cfg.json");
  EXPECT_THROW(config.model(), ConfigError);
  doc["model"].erase("arch");
  doc["model"].erase("torchscript");
  EXPECT_THROW(ExperimentConfig::from_json(doc, "cfg.json").model(), ConfigError);
}

TEST(ConfigTest, TrainBaseNeedsOneNoiseMode) {
  json doc = valid_config();
  doc["train_base"] = {{"sigma", 0.25}, {"sigma_candidates", {0.25, 0.5}}};
  EXPECT_THROW(ExperimentConfig::from_json(doc, "c").train_base(), ConfigError);
  doc["train_base"] = {{"epochs", 2}};
  EXPECT_THROW(ExperimentConfig::from_json(doc, "c").train_base(), ConfigError);
  doc["train_base"] = {{"sigma_candidates", {0.25, -0.5}}};
  EXPECT_TRUE(has_pointer(issues_of(doc), "/train_base/sigma_candidates/1"));
}

TEST(ConfigTest, LoadMakesPathsRelativeToTheFileAndAppliesPatch) {
  const auto dir = std::filesystem::temp_directory_path() / "dualrs_config_test";
  std::filesystem::create_directories(dir / "sub");
  json doc = valid_config();
  doc["dataset"]["images"] = "../data/i.gz";
  doc["dataset"]["splits"]["test"] = "split/test.txt";
  std::ofstream(dir / "sub" / "c.json") << doc.dump();
  const json patch = {{"certify", {{"sigma", 1.0}}}, {"model", {{"checkpoint", "/abs/model.pt"}}}};
  const auto config = ExperimentConfig::load((dir / "sub" / "c.json").string(), patch);
  EXPECT_EQ(config.dataset().images, (dir / "data" / "i.gz").string());
  EXPECT_EQ(config.dataset().splits.at("test"), (dir / "sub" / "split" / "test.txt").string());
  EXPECT_EQ(config.certify().sigma, 1.0);
  EXPECT_EQ(config.model().checkpoint, "/abs/model.pt");
  std::filesystem::remove_all(dir);
}

TEST(ConfigTest, DatasetKeysBelongToTheirFormat) {
  json doc = valid_config();
  doc["dataset"] = {{"format", "cifar10_bin"}, {"root", "/d/cifar"}};
  const auto cifar = ExperimentConfig::from_json(doc, "c").dataset();
  EXPECT_EQ(cifar.root, "/d/cifar");
  doc["dataset"] = {{"format", "cifar10_bin"}, {"images", "/d/i.gz"}, {"crop", 200}};
  std::vector<ConfigIssue> issues;
  try {
    ExperimentConfig::from_json(doc, "c").dataset();
  } catch (const ConfigError& e) {
    issues = e.issues();
  }
  // Every problem at once: a key of another format, another one, and the missing root.
  EXPECT_TRUE(has_pointer(issues, "/dataset/images"));
  EXPECT_TRUE(has_pointer(issues, "/dataset/crop"));
  EXPECT_TRUE(has_pointer(issues, "/dataset/root"));
  doc["dataset"] = {{"format", "imagenet_folder"}, {"root", "/d/in"}, {"synsets", "/d/s.txt"}};
  const auto imagenet = ExperimentConfig::from_json(doc, "c").dataset();
  EXPECT_EQ(imagenet.resize, 256);
  EXPECT_EQ(imagenet.crop, 224);
  EXPECT_TRUE(imagenet.val_labels.empty());
  doc["dataset"]["resize"] = 200;
  EXPECT_THROW(ExperimentConfig::from_json(doc, "c").dataset(), ConfigError);  // crop 224 > resize 200
  doc["dataset"] = {{"format", "imagenet_folder"}, {"root", "/d/in"}};
  EXPECT_THROW(ExperimentConfig::from_json(doc, "c").dataset(), ConfigError);  // no synsets
  doc["dataset"] = {{"format", "imagenet_folder"}, {"root", "/d/in"}, {"synsets", "/d/s.txt"}, {"crop", 0}};
  EXPECT_TRUE(has_pointer(issues_of(doc), "/dataset/crop"));  // schema: >= 1
  doc["dataset"] = {{"format", "cifar10"}, {"root", "/d/in"}};
  EXPECT_TRUE(has_pointer(issues_of(doc), "/dataset/format"));
}

TEST(ConfigTest, DatasetFolderPathsAreRelativeToTheFile) {
  const auto dir = std::filesystem::temp_directory_path() / "dualrs_config_test_ds";
  std::filesystem::create_directories(dir);
  json doc = valid_config();
  doc["dataset"] = {{"format", "imagenet_folder"}, {"root", "in"}, {"synsets", "in/s.txt"}, {"val_labels", "v.txt"}};
  std::ofstream(dir / "c.json") << doc.dump();
  const auto ds = ExperimentConfig::load((dir / "c.json").string()).dataset();
  EXPECT_EQ(ds.root, (dir / "in").string());
  EXPECT_EQ(ds.synsets, (dir / "in" / "s.txt").string());
  EXPECT_EQ(ds.val_labels, (dir / "v.txt").string());
  std::filesystem::remove_all(dir);
}

TEST(ConfigTest, MissingFileAndBadJson) {
  EXPECT_THROW(ExperimentConfig::load("/nonexistent/dualrs.json"), IoError);
  const auto path = std::filesystem::temp_directory_path() / "dualrs_bad.json";
  std::ofstream(path) << "{\"certify\": {";
  EXPECT_THROW(ExperimentConfig::load(path.string()), ConfigError);
  std::filesystem::remove(path);
}

TEST(ConfigTest, JobSchemaRejectsUnknownCommand) {
  const json job = json::parse(R"({"name": "j", "config": "c.json", "stages": [{"name": "a", "command": "certfy"}]})");
  try {
    validate_schema(job, SchemaKind::kJob, "job.json");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_TRUE(has_pointer(e.issues(), "/stages/0/command"));
  }
}

TEST(ConfigTest, DecimalFormattingAndMethodNames) {
  EXPECT_EQ(format_decimal(0.25), "0.25");
  EXPECT_EQ(format_decimal(1.0), "1.0");
  EXPECT_EQ(format_decimal(0.1), "0.1");
  EXPECT_EQ(format_decimal(2.5), "2.5");
  EXPECT_EQ(global_method_name(0.5), "global_sigma_0.5");
  EXPECT_EQ(global_method_name(1.0), "global_sigma_1.0");
}

TEST(ConfigTest, DecimalFormattingIsShortExactAndLaidOutLikePythonRepr) {
  // Expected strings: Python's repr() of the same doubles (e.g. repr(471 / 500) == '0.942').
  EXPECT_EQ(format_decimal(471.0 / 500.0), "0.942");
  EXPECT_EQ(format_decimal(0.0), "0.0");
  EXPECT_EQ(format_decimal(-0.0), "-0.0");
  EXPECT_EQ(format_decimal(0.0005), "0.0005");
  EXPECT_EQ(format_decimal(0.00001), "1e-05");
  EXPECT_EQ(format_decimal(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(format_decimal(-2.75), "-2.75");
  EXPECT_EQ(format_decimal(100.0), "100.0");
  EXPECT_EQ(format_decimal(1e15), "1000000000000000.0");
  EXPECT_EQ(format_decimal(1e16), "1e+16");
  EXPECT_EQ(format_decimal(123456789012345678.0), "1.2345678901234568e+17");
  EXPECT_EQ(format_decimal(5e-324), "5e-324");
  EXPECT_EQ(format_decimal(std::nan("")), "nan");
  EXPECT_EQ(format_decimal(-HUGE_VAL), "-inf");
  // Every value reads back bit for bit, including ones "%.15g" would round.
  for (const double v : {0.1 + 0.2, 0.556024368920333, 1.0 - 1e-16, 1e300 / 3.0, -2.5e-310, 0.41799999999999998,
                         12345.678901234567, 0.00012345678901234567}) {
    const std::string text = format_decimal(v);
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), v) << text;
  }
}

TEST(ConfigTest, DenoiserSectionAndClassifierInput) {
  json doc = valid_config();
  EXPECT_FALSE(ExperimentConfig::from_json(doc, "cfg.json").denoiser().has_value());
  doc["denoiser"] = {{"torchscript", "/m/eps.pt"}, {"schedule", "cosine"}, {"steps", 4000}};
  doc["model"]["input_range"] = "[-1,1]";
  doc["model"]["input_size"] = 224;
  doc["dual"] = {{"sigma_candidates", {0.25, 0.5}}, {"sigma_e", 0.5},
                 {"estimator", {{"arch", "mnist_cnn"}, {"input_size", {32, 48}}}}};
  const auto config = ExperimentConfig::from_json(doc, "cfg.json");
  const DenoiserConfig d = *config.denoiser();
  EXPECT_EQ(d.torchscript, "/m/eps.pt");
  EXPECT_EQ(d.steps, 4000);
  EXPECT_TRUE(d.rescale_timesteps);  // default
  EXPECT_EQ(d.device, "cpu");
  const ClassifierInputConfig in = config.model().input;
  EXPECT_EQ(to_string(in.range), "[-1,1]");
  EXPECT_EQ(in.height, 224);
  EXPECT_EQ(in.width, 224);
  EXPECT_FALSE(in.is_identity());
  const ClassifierInputConfig est = config.dual().estimator.input;
  EXPECT_EQ(to_string(est.range), "[0,1]");
  EXPECT_EQ(est.height, 32);
  EXPECT_EQ(est.width, 48);
  EXPECT_EQ(to_model_config(config.dual().estimator, 2).input.width, 48);
  // Defaults of the trainer section.
  const TrainDenoiserConfig t = config.train_denoiser();
  EXPECT_EQ(t.selection.split, "train");
  EXPECT_TRUE(t.sigmas.empty());
}

TEST(ConfigTest, DenoiserProblemsNameTheirKeys) {
  json doc = valid_config();
  doc["denoiser"] = {{"arch", "mnist_unet"}, {"steps", 0}};
  doc["model"]["input_range"] = "[0,255]";
  doc["model"]["input_size"] = {28};
  auto issues = issues_of(doc);
  EXPECT_TRUE(has_pointer(issues, "/denoiser/steps"));
  EXPECT_TRUE(has_pointer(issues, "/model/input_range"));
  EXPECT_TRUE(has_pointer(issues, "/model/input_size"));
  // (The reporter keeps the innermost problems, so object-level ones show once the keys are valid.)
  doc = valid_config();
  doc["denoiser"] = {{"arch", "mnist_unet"}, {"steps", 1000}, {"extra", 1}};
  issues = issues_of(doc);
  EXPECT_TRUE(has_pointer(issues, "/denoiser/extra"));
  bool schedule_named = false;  // "required" is reported on the object, naming the key
  for (const auto& i : issues) schedule_named = schedule_named || i.message.find("schedule") != std::string::npos;
  EXPECT_TRUE(schedule_named);
  json both = valid_config();
  both["denoiser"] = {{"arch", "mnist_unet"}, {"torchscript", "/m/eps.pt"}, {"schedule", "linear"}, {"steps", 1000}};
  try {
    ExperimentConfig::from_json(both, "cfg.json").denoiser();
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.issues().front().pointer, "/denoiser");
  }
}

TEST(ConfigTest, DenoiserPathsAreMadeAbsolute) {
  json doc = valid_config();
  doc["denoiser"] = {{"arch", "mnist_unet"}, {"checkpoint", "runs/den/denoiser.pt"}, {"schedule", "linear"}, {"steps", 1000}};
  absolutize_config_paths(doc, "/base");
  EXPECT_EQ(doc["denoiser"]["checkpoint"], "/base/runs/den/denoiser.pt");
}

TEST(ConfigTest, TrainBaseAcceptsCleanTraining) {
  json doc = valid_config();
  doc["train_base"] = {{"sigma", 0}};
  EXPECT_EQ(*ExperimentConfig::from_json(doc, "cfg.json").train_base().sigma, 0.0);
  doc["train_base"] = {{"sigma", -0.1}};
  EXPECT_TRUE(has_pointer(issues_of(doc), "/train_base/sigma"));
}

// A ConfigError's message for `pointer`, or "" when it names no such issue.
template <typename Fn>
std::string issue_message(Fn&& fn, const std::string& pointer) {
  try {
    fn();
  } catch (const ConfigError& e) {
    for (const auto& i : e.issues()) {
      if (i.pointer == pointer) return i.message;
    }
  }
  return "";
}

TEST(ConfigEnumTest, EveryNameRoundTripsAndOthersNameTheAllowedValues) {
  for (const char* name : {"global", "dual", "multiscale"}) EXPECT_EQ(to_string(parse_method(name, "/m")), name);
  for (const char* name : {"mnist_idx", "cifar10_bin", "imagenet_folder"}) {
    EXPECT_EQ(to_string(parse_dataset_format(name, "/f")), name);
  }
  for (const char* name : {"inclusive", "strict", "both"}) EXPECT_EQ(to_string(parse_table_convention(name, "/c")), name);
  for (const char* name : {"bonferroni", "reference"}) EXPECT_EQ(to_string(parse_alpha_split(name, "/a")), name);
  for (const char* name : {"strong", "weak", "none"}) EXPECT_EQ(to_string(parse_radius_weight(name, "/w")), name);
  for (const char* name : {"[0,1]", "[-1,1]"}) EXPECT_EQ(to_string(parse_input_range(name, "/r")), name);
  for (const char* name : {"cpu", "cuda", "cuda:0", "cuda:12"}) EXPECT_EQ(to_string(parse_device(name, "/d")), name);
  EXPECT_EQ(parse_method("dual", "/m"), Method::kDual);
  EXPECT_EQ(parse_alpha_split("reference", "/a"), AlphaSplit::kReference);
  EXPECT_EQ(parse_input_range("[-1,1]", "/r"), InputRange::kMinusOneOne);
  EXPECT_TRUE(parse_device("cuda", "/d").rank_local());
  EXPECT_FALSE(parse_device("cuda:1", "/d").rank_local());
  EXPECT_EQ(parse_device("cuda:1", "/d").index, 1);
  EXPECT_EQ(parse_device("cpu", "/d").kind, DeviceKind::kCpu);
  const std::string bad = issue_message([] { parse_method("duel", "/certify/method", "cfg.json"); }, "/certify/method");
  EXPECT_NE(bad.find("global, dual or multiscale"), std::string::npos) << bad;
  EXPECT_NE(bad.find("'duel'"), std::string::npos) << bad;
  EXPECT_NE(issue_message([] { parse_table_convention("loose", "--convention"); }, "--convention").find("inclusive, strict or both"),
            std::string::npos);
  for (const char* device : {"gpu", "cuda:x", "", "cpu:0", "cuda:-1", "cuda:", "mps"}) {
    EXPECT_NE(issue_message([&] { parse_device(device, "/model/device"); }, "/model/device"), "") << device;
  }
}

TEST(ConfigEnumTest, ResolvedJsonKeepsTheConfigSpelling) {
  json doc = valid_config();
  doc["certify"]["method"] = "multiscale";
  doc["certify"]["alpha_split"] = "reference";
  doc["predict"] = {{"method", "dual"}};
  doc["table"] = {{"convention", "strict"}};
  doc["model"]["input_range"] = "[-1,1]";
  const auto config = ExperimentConfig::from_json(doc, "cfg.json");
  const CertifyConfig c = config.certify();
  EXPECT_EQ(c.method, Method::kMultiscale);
  EXPECT_EQ(c.alpha_split, AlphaSplit::kReference);
  const json j = to_json(c);
  EXPECT_EQ(j.at("method"), "multiscale");
  EXPECT_EQ(j.at("alpha_split"), "reference");
  EXPECT_EQ(to_json(config.predict()).at("method"), "dual");
  EXPECT_EQ(to_json(config.predict()).at("alpha_split"), "bonferroni");
  EXPECT_EQ(to_json(config.table()).at("convention"), "strict");
  EXPECT_EQ(to_json(config.dataset()).at("format"), "mnist_idx");
  EXPECT_EQ(to_json(config.model()).at("input").at("input_range"), "[-1,1]");
  EXPECT_EQ(to_json(config.plot()).at("convention"), "inclusive");
  doc["denoiser"] = {{"torchscript", "/m/eps.pt"}, {"schedule", "linear"}, {"steps", 1000}};
  EXPECT_EQ(ExperimentConfig::from_json(doc, "cfg.json").denoiser()->schedule, ScheduleKind::kLinear);
  EXPECT_EQ(to_json(*ExperimentConfig::from_json(doc, "cfg.json").denoiser()).at("schedule"), "linear");
}

TEST(ConfigEnumTest, BadDevicesAreConfigErrorsNamingTheirEntry) {
  json doc = valid_config();
  doc["model"]["device"] = "gpu";
  const auto config = ExperimentConfig::from_json(doc, "cfg.json");
  EXPECT_NE(issue_message([&] { config.model(); }, "/model/device"), "");
  doc = valid_config();
  doc["dual"] = {{"sigma_candidates", {0.25, 0.5}}, {"sigma_e", 0.5}, {"estimator", {{"arch", "mnist_cnn"}, {"device", "cuda:one"}}}};
  const auto dual = ExperimentConfig::from_json(doc, "cfg.json");
  EXPECT_NE(issue_message([&] { dual.dual(); }, "/dual/estimator/device"), "");
}

TEST(DualAlphaConfigTest, CertifyResolvesAlphaEAndAlphaCThroughTheSplit) {
  json doc = valid_config();
  doc["certify"]["alpha"] = 0.002;
  CertifyConfig c = ExperimentConfig::from_json(doc, "cfg.json").certify();
  EXPECT_EQ(c.alpha_e, dual_alpha_split(0.002).alpha_e);
  EXPECT_EQ(c.alpha_c, 0.001);
  doc["certify"]["alpha_e"] = 0.0015;
  c = ExperimentConfig::from_json(doc, "cfg.json").certify();
  EXPECT_EQ(c.alpha_e, 0.0015);
  EXPECT_EQ(c.alpha_c, 0.001);
  EXPECT_EQ(to_json(c).at("alpha_e"), 0.0015);
  EXPECT_EQ(to_json(c).at("alpha_c"), 0.001);
}

// /certify/method_name names the result file's method (the Table 2 row); absent = derived, and
// the resolved config (so resume keys and golden digests) does not mention it.
TEST(CertifyConfigTest, MethodNameIsReadCheckedAndOnlyResolvedWhenGiven) {
  json doc = valid_config();
  CertifyConfig c = ExperimentConfig::from_json(doc, "cfg.json").certify();
  EXPECT_EQ(c.method_name, "");
  EXPECT_FALSE(to_json(c).contains("method_name"));
  doc["certify"]["method_name"] = "dual_rs_off_the_shelf";
  c = ExperimentConfig::from_json(doc, "cfg.json").certify();
  EXPECT_EQ(c.method_name, "dual_rs_off_the_shelf");
  EXPECT_EQ(to_json(c).at("method_name"), "dual_rs_off_the_shelf");
  CertifyConfig bad;
  bad.method_name = "dual rs/1";
  EXPECT_NE(issue_message([&] { validate(bad); }, "/certify/method_name").find("dual rs/1"), std::string::npos);
}

TEST(CertifyConfigTest, DualRsClassifierStreamsTakeTheSigmaWordAndAlphaCOfDualRs) {
  json doc = valid_config();
  doc["dual"] = {{"sigma_candidates", {0.25, 0.5, 1.0}}, {"sigma_e", 1.0}};
  CertifyConfig c = ExperimentConfig::from_json(doc, "cfg.json").certify();
  EXPECT_EQ(c.streams, NoiseStreams::kGlobal);
  EXPECT_EQ(c.sigma_word, 0u);
  EXPECT_FALSE(to_json(c).contains("streams"));  // resume keys of existing runs unchanged
  doc["certify"]["streams"] = "dual_rs_classifier";
  c = ExperimentConfig::from_json(doc, "cfg.json").certify();
  EXPECT_EQ(c.sigma_word, 1u);     // sigma 0.5 is index 1 of Sigma
  EXPECT_EQ(c.alpha, 0.005);       // alpha_c = alpha / 2 (dual_alpha_split)
  EXPECT_EQ(c.alpha, c.alpha_c);
  EXPECT_EQ(to_json(c).at("streams"), "dual_rs_classifier");
  EXPECT_EQ(to_json(c).at("sigma_word"), 1);
  json off_sigma = doc;
  off_sigma["certify"]["sigma"] = 0.75;
  const std::string msg = issue_message([&] { ExperimentConfig::from_json(off_sigma, "cfg.json").certify(); }, "/certify/sigma");
  EXPECT_NE(msg.find("0.75"), std::string::npos) << msg;
  json dual_method = doc;
  dual_method["certify"]["method"] = "dual";
  EXPECT_NE(issue_message([&] { ExperimentConfig::from_json(dual_method, "cfg.json").certify(); }, "/certify/streams"), "");
  json bad_name = doc;
  bad_name["certify"]["streams"] = "dual";
  EXPECT_TRUE(has_pointer(issues_of(bad_name), "/certify/streams"));  // refused by the schema
}

TEST(SectionValidationTest, LabelAndEstimateSigmaChecksNameTheirKeys) {
  // The schema refuses these in a config file; validate() is what code that fills the
  // structs itself (and every typed reader) relies on.
  LabelConfig label;
  label.n = 0;
  label.alpha = 1.0;
  label.shard_size = 0;
  EXPECT_EQ(issue_message([&] { validate(label); }, "/label/n"), "must be >= 1");
  EXPECT_EQ(issue_message([&] { validate(label); }, "/label/alpha"), "must be in (0, 1)");
  EXPECT_EQ(issue_message([&] { validate(label); }, "/label/shard_size"), "must be >= 1");
  EstimateSigmaConfig est;
  est.n = 0;
  est.shard_size = 0;
  EXPECT_EQ(issue_message([&] { validate(est); }, "/estimate_sigma/n"), "must be >= 1");
  EXPECT_EQ(issue_message([&] { validate(est); }, "/estimate_sigma/shard_size"), "must be >= 1");
  PredictConfig predict;
  predict.shard_size = 0;
  EXPECT_NE(issue_message([&] { validate(predict); }, "/predict/shard_size"), "");
}

TEST(SectionValidationTest, ValidateListsEveryProblemOfASection) {
  CertifyConfig c;
  c.sigma = 0.0;
  c.alpha = 1.5;
  c.n0 = 0;
  c.alpha_e = 0.0;
  c.shard_size = 0;
  try {
    validate(c);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    for (const char* p : {"/certify/sigma", "/certify/alpha", "/certify/n0", "/certify/alpha_e", "/certify/shard_size"}) {
      EXPECT_TRUE(has_pointer(e.issues(), p)) << p;
    }
    EXPECT_FALSE(has_pointer(e.issues(), "/certify/alpha_c"));  // -1: not given, alpha/2
  }
  EXPECT_NO_THROW(validate(CertifyConfig{}));
  EXPECT_NO_THROW(validate(PredictConfig{}));
  EXPECT_NO_THROW(validate(LabelConfig{}));
  EXPECT_NO_THROW(validate(EstimateSigmaConfig{}));
  EXPECT_NO_THROW(validate(TrainEstimatorConfig{}));
  TrainEstimatorConfig t;
  t.m = 0;
  t.validation_fraction = 1.0;
  t.sigma_e = 0.0;
  try {
    validate(t);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    for (const char* p : {"/train_estimator/m", "/train_estimator/validation_fraction", "/dual/sigma_e"}) {
      EXPECT_TRUE(has_pointer(e.issues(), p)) << p;
    }
  }
}

TEST(TrainEstimatorConfigTest, PresetsAreRecipesUnderTheGivenKeys) {
  const TrainEstimatorConfig cifar = train_estimator_preset("cifar10");
  EXPECT_EQ(cifar.epochs, 90);
  EXPECT_EQ(cifar.batch_size, 128);
  EXPECT_EQ(cifar.lr_step_epochs, 30);
  EXPECT_EQ(cifar.lambda, 40.0);
  EXPECT_EQ(cifar.radius_weight, RadiusWeight::kStrong);
  const TrainEstimatorConfig imagenet = train_estimator_preset("imagenet");
  EXPECT_EQ(imagenet.epochs, 9);
  EXPECT_EQ(imagenet.batch_size, 200);
  EXPECT_EQ(imagenet.lr, 0.005);
  EXPECT_EQ(imagenet.lr_step_epochs, 3);
  EXPECT_EQ(imagenet.lambda, 10.0);
  EXPECT_EQ(imagenet.radius_weight, RadiusWeight::kWeak);
  EXPECT_EQ(imagenet.validation_fraction, TrainEstimatorConfig{}.validation_fraction);  // not part of a recipe
  EXPECT_EQ(train_estimator_preset("").epochs, TrainEstimatorConfig{}.epochs);
  EXPECT_NE(issue_message([] { train_estimator_preset("mnist"); }, "/train_estimator/preset"), "");

  json doc = valid_config();
  doc["dual"] = {{"sigma_candidates", {0.25, 0.5}}, {"sigma_e", 0.75}};
  doc["train_estimator"] = {{"preset", "imagenet"}, {"lr", 0.02}, {"radius_weight", "none"}, {"labels", "/l/labels.h5"}};
  const TrainEstimatorConfig t = ExperimentConfig::from_json(doc, "cfg.json").train_estimator();
  EXPECT_EQ(t.preset, "imagenet");
  EXPECT_EQ(t.epochs, 9);       // from the preset
  EXPECT_EQ(t.lr, 0.02);        // the section's key wins
  EXPECT_EQ(t.radius_weight, RadiusWeight::kNone);
  EXPECT_EQ(t.sigma_e, 0.75);   // from /dual
  EXPECT_EQ(t.labels, "/l/labels.h5");
  const json j = to_json(t);
  EXPECT_EQ(j.at("radius_weight"), "none");
  EXPECT_FALSE(j.contains("labels"));
  EXPECT_FALSE(j.contains("init_checkpoint"));  // only when set
  // Without /dual the estimator's σ_e keeps its default; no labels is not an error here.
  EXPECT_EQ(ExperimentConfig::from_json(valid_config(), "cfg.json").train_estimator().sigma_e, 1.0);
}

}  // namespace
}  // namespace dualrs
