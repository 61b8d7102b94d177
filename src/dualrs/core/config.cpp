#include "dualrs/core/config.h"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <utility>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "dualrs/core/dual.h"
#include "dualrs/core/error.h"
#include "dualrs/core/schemas_embedded.h"

namespace dualrs {
inline namespace core {
namespace fs = std::filesystem;
using nlohmann::json;

const std::string& schema_text(SchemaKind kind) {
  static const std::string config(embedded::kConfigSchema);
  static const std::string job(embedded::kJobSchema);
  return kind == SchemaKind::kConfig ? config : job;
}

namespace {
std::string escape_token(const std::string& token) {
  std::string out;
  for (char c : token) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

// valijson context: {"<root>", "[certify]", "[sigma]"} -> "/certify/sigma".
std::string context_to_pointer(const std::vector<std::string>& context) {
  std::string out;
  for (const auto& part : context) {
    if (part == "<root>") continue;
    std::string token = part;
    if (token.size() >= 2 && token.front() == '[' && token.back() == ']') token = token.substr(1, token.size() - 2);
    out += "/" + escape_token(token);
  }
  return out;
}

bool is_prefix(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  return a.size() < b.size() && std::equal(a.begin(), a.end(), b.begin());
}

const valijson::Schema& parsed_schema(SchemaKind kind) {
  static const auto make = [](SchemaKind k) {
    auto schema = std::make_unique<valijson::Schema>();
    const json doc = json::parse(schema_text(k));
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter adapter(doc);
    parser.populateSchema(adapter, *schema);
    return schema;
  };
  static const auto config = make(SchemaKind::kConfig);
  static const auto job = make(SchemaKind::kJob);
  return kind == SchemaKind::kConfig ? *config : *job;
}

// Reads `key` of `obj` as T, or returns `fallback` when absent.
template <typename T>
T get_or(const json& obj, const char* key, T fallback) {
  auto it = obj.find(key);
  return it == obj.end() ? fallback : it->get<T>();
}

// The optimisation keys every trainer section shares (epochs, batch size, AdamW lr and weight
// decay, step schedule).
template <typename Config>
void read_optimizer_keys(const json& j, Config& c) {
  c.epochs = get_or<std::int64_t>(j, "epochs", c.epochs);
  c.batch_size = get_or<std::int64_t>(j, "batch_size", c.batch_size);
  c.lr = get_or<double>(j, "lr", c.lr);
  c.weight_decay = get_or<double>(j, "weight_decay", c.weight_decay);
  c.lr_step_epochs = get_or<std::int64_t>(j, "lr_step_epochs", c.lr_step_epochs);
  c.lr_gamma = get_or<double>(j, "lr_gamma", c.lr_gamma);
}

SelectionConfig read_selection(const json& section, const SelectionConfig& defaults) {
  SelectionConfig s = defaults;
  auto it = section.find("selection");
  if (it == section.end()) return s;
  s.split = get_or<std::string>(*it, "split", s.split);
  s.begin = get_or<std::int64_t>(*it, "begin", s.begin);
  s.end = get_or<std::int64_t>(*it, "end", s.end);
  s.skip = get_or<std::int64_t>(*it, "skip", s.skip);
  return s;
}

// The spelling of every enumerator of E, in the order the allowed values are listed.
template <typename E>
struct Names;
template <>
struct Names<Method> {
  static constexpr std::pair<Method, const char*> kAll[] = {
      {Method::kGlobal, "global"}, {Method::kDual, "dual"}, {Method::kMultiscale, "multiscale"}};
};
template <>
struct Names<DatasetFormat> {
  static constexpr std::pair<DatasetFormat, const char*> kAll[] = {{DatasetFormat::kMnistIdx, "mnist_idx"},
                                                                   {DatasetFormat::kCifar10Bin, "cifar10_bin"},
                                                                   {DatasetFormat::kImagenetFolder, "imagenet_folder"}};
};
template <>
struct Names<TableConvention> {
  static constexpr std::pair<TableConvention, const char*> kAll[] = {{TableConvention::kInclusive, "inclusive"},
                                                                     {TableConvention::kStrict, "strict"},
                                                                     {TableConvention::kBoth, "both"}};
};
template <>
struct Names<AlphaSplit> {
  static constexpr std::pair<AlphaSplit, const char*> kAll[] = {{AlphaSplit::kBonferroni, "bonferroni"},
                                                                {AlphaSplit::kReference, "reference"}};
};
template <>
struct Names<RadiusWeight> {
  static constexpr std::pair<RadiusWeight, const char*> kAll[] = {
      {RadiusWeight::kStrong, "strong"}, {RadiusWeight::kWeak, "weak"}, {RadiusWeight::kNone, "none"}};
};
template <>
struct Names<InputRange> {
  static constexpr std::pair<InputRange, const char*> kAll[] = {{InputRange::kZeroOne, "[0,1]"},
                                                                {InputRange::kMinusOneOne, "[-1,1]"}};
};
template <>
struct Names<DeviceKind> {
  static constexpr std::pair<DeviceKind, const char*> kAll[] = {{DeviceKind::kCpu, "cpu"}, {DeviceKind::kCuda, "cuda"}};
};

template <>
struct Names<NoiseKind> {
  static constexpr std::pair<NoiseKind, const char*> kAll[] = {{NoiseKind::kGaussian, "gaussian"}, {NoiseKind::kGrid, "grid"}};
};
template <>
struct Names<Sampling> {
  static constexpr std::pair<Sampling, const char*> kAll[] = {{Sampling::kFixed, "fixed"}, {Sampling::kStaged, "staged"}};
};
template <>
struct Names<EstimatorTarget> {
  static constexpr std::pair<EstimatorTarget, const char*> kAll[] = {{EstimatorTarget::kSoftCe, "soft_ce"},
                                                                     {EstimatorTarget::kCe, "ce"}};
};
template <>
struct Names<Precision> {
  static constexpr std::pair<Precision, const char*> kAll[] = {
      {Precision::kFp32, "fp32"}, {Precision::kBf16, "bf16"}, {Precision::kFp16, "fp16"}};
};
template <>
struct Names<NoiseStreams> {
  static constexpr std::pair<NoiseStreams, const char*> kAll[] = {{NoiseStreams::kGlobal, "global"},
                                                                  {NoiseStreams::kDualRsClassifier, "dual_rs_classifier"}};
};

template <typename E>
std::string name_of(E value) {
  for (const auto& [e, name] : Names<E>::kAll) {
    if (e == value) return name;
  }
  throw std::logic_error("an enumerator without a name");
}

// "a, b or c"
template <typename E>
std::string allowed_names() {
  std::string out;
  const std::size_t count = std::size(Names<E>::kAll);
  for (std::size_t i = 0; i < count; ++i) {
    out += (i == 0 ? "" : i + 1 == count ? " or " : ", ") + std::string(Names<E>::kAll[i].second);
  }
  return out;
}

template <typename E>
E parse_name(const std::string& name, const std::string& pointer, const std::string& source) {
  for (const auto& [e, n] : Names<E>::kAll) {
    if (name == n) return e;
  }
  throw ConfigError(source, pointer, "must be " + allowed_names<E>() + ", got '" + name + "'");
}

// Reads the enum-valued `key` of `obj`, or returns `fallback` when absent; `pointer` is the key's.
template <typename E>
E get_enum_or(const json& obj, const char* key, E fallback, const std::string& pointer, const std::string& source) {
  auto it = obj.find(key);
  return it == obj.end() ? fallback : parse_name<E>(it->get<std::string>(), pointer, source);
}

// /…/loader_threads of a trainer section: absent = 0 (the rank's CPU share), else >= 1.
std::int64_t read_loader_threads(const json& j, const std::string& section, const std::string& source) {
  auto it = j.find("loader_threads");
  if (it == j.end()) return 0;
  const auto threads = it->get<std::int64_t>();
  if (threads <= 0) {
    throw ConfigError(source, section + "/loader_threads",
                      "must be >= 1, got " + std::to_string(threads) + " (leave it out for the rank's CPU share)");
  }
  return threads;
}

// /…/precision of a model object; fp16 only on a CUDA device (CPU kernels lack most of it).
Precision read_precision(const json& j, const std::string& pointer, const std::string& device, const std::string& source) {
  const Precision p = get_enum_or(j, "precision", Precision::kFp32, pointer + "/precision", source);
  if (p == Precision::kFp16 && device.rfind("cuda", 0) != 0) {
    throw ConfigError(source, pointer + "/precision",
                      "fp16 needs a CUDA device (" + pointer + "/device is '" + device + "'); use bf16 on the CPU");
  }
  return p;
}

// Runs a section's validate(), naming `source` in its error.
template <typename Config>
void validate_in(const Config& c, const std::string& source) {
  try {
    validate(c);
  } catch (const ConfigError& e) {
    throw ConfigError(source, e.issues());
  }
}

// /…/input_range and /…/input_size of a model object (input_size: a side or [height, width]).
ClassifierInputConfig read_classifier_input(const json& j, const std::string& pointer, const std::string& source) {
  ClassifierInputConfig c;
  c.range = get_enum_or(j, "input_range", c.range, pointer + "/input_range", source);
  if (auto it = j.find("input_size"); it != j.end()) {
    if (it->is_array()) {
      c.height = it->at(0).get<std::int64_t>();
      c.width = it->at(1).get<std::int64_t>();
    } else {
      c.height = c.width = it->get<std::int64_t>();
    }
  }
  return c;
}

std::string make_absolute(const std::string& path, const std::string& base_dir) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(base_dir) / path).lexically_normal().string();
}
}  // namespace

namespace {

const json& schema_json(SchemaKind kind) {
  static const json config = json::parse(schema_text(SchemaKind::kConfig));
  static const json job = json::parse(schema_text(SchemaKind::kJob));
  return kind == SchemaKind::kConfig ? config : job;
}

// The schema node that describes the value at `pointer` ("#/definitions/..." references
// followed), or null.
json schema_at(const json& root, const std::string& pointer) {
  const auto resolve = [&](json node) {
    for (int hops = 0; hops < 8 && node.is_object() && node.contains("$ref"); ++hops) {
      const std::string ref = node["$ref"].get<std::string>();
      if (ref.rfind("#", 0) != 0) return json();
      node = root.at(json::json_pointer(ref.substr(1)));
    }
    return node;
  };
  json node = resolve(root);
  std::stringstream tokens(pointer);
  std::string token;
  std::getline(tokens, token, '/');  // the empty token before the first '/'
  while (std::getline(tokens, token, '/')) {
    for (std::size_t pos; (pos = token.find("~1")) != std::string::npos;) token.replace(pos, 2, "/");
    for (std::size_t pos; (pos = token.find("~0")) != std::string::npos;) token.replace(pos, 2, "~");
    if (node.contains("properties") && node["properties"].contains(token)) node = resolve(node["properties"][token]);
    else if (node.contains("items")) node = resolve(node["items"]);
    else if (node.contains("additionalProperties") && node["additionalProperties"].is_object()) node = resolve(node["additionalProperties"]);
    else return json();
  }
  return node;
}

std::string json_type_name(const json& value) {
  if (value.is_number_integer()) return "an integer";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  return "null";
}

std::string schema_type_name(const std::string& type) {
  if (type == "integer") return "an integer";
  if (type == "number") return "a number";
  if (type == "string") return "a string";
  if (type == "boolean") return "a boolean";
  if (type == "array") return "an array";
  if (type == "object") return "an object";
  return type;
}

// "expected an integer, got a string": what the schema wants at `pointer` and what is there.
std::string type_message(const json& doc, const json& schema, const std::string& pointer) {
  std::string expected;
  const json node = schema_at(schema, pointer);
  if (node.is_object() && node.contains("type")) {
    const json& type = node["type"];
    if (type.is_string()) {
      expected = schema_type_name(type.get<std::string>());
    } else if (type.is_array()) {
      for (std::size_t i = 0; i < type.size(); ++i) {
        expected += (i == 0 ? "" : i + 1 == type.size() ? " or " : ", ") + schema_type_name(type[i].get<std::string>());
      }
    }
  }
  const json::json_pointer at(pointer);
  const std::string got = doc.contains(at) ? json_type_name(doc.at(at)) : "another type";
  return expected.empty() ? "wrong type (" + got + ")" : "expected " + expected + ", got " + got;
}

}  // namespace

void validate_schema(const json& doc, SchemaKind kind, const std::string& source) {
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(doc);
  if (validator.validate(parsed_schema(kind), target, &results)) return;
  std::vector<valijson::ValidationResults::Error> errors;
  valijson::ValidationResults::Error error;
  while (results.popError(error)) errors.push_back(error);
  // valijson reports a failure at every level of nesting; keep the innermost ones, and every
  // unknown key (reported at the object holding it, which may also hold deeper failures).
  const std::string marker = "could not be validated using 'properties' or 'additionalProperties' constraints: '";
  std::vector<ConfigIssue> issues;
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& e : errors) {
    bool has_deeper = false;
    for (const auto& other : errors) has_deeper = has_deeper || is_prefix(e.context, other.context);
    if (has_deeper && e.description.find(marker) == std::string::npos) continue;
    std::string pointer = context_to_pointer(e.context);
    std::string message = e.description;
    // Name the unknown key itself, not only the object holding it.
    if (auto pos = message.find(marker); pos != std::string::npos) {
      const std::string key = message.substr(pos + marker.size(), message.rfind('\'') - pos - marker.size());
      pointer += "/" + escape_token(key);
      message = "unknown key '" + key + "'";
    }
    if (message.find("Value type not permitted by 'type' constraint") != std::string::npos) {
      message = type_message(doc, schema_json(kind), pointer);
    }
    if (seen.insert({pointer, message}).second) issues.push_back({pointer, message});
  }
  throw ConfigError(source, std::move(issues));
}

namespace {

// Configs and jobs are a few kilobytes; a file far larger is a mistake (a dataset, a log).
constexpr std::uintmax_t kMaxJsonBytes = 16u << 20;
// Deeper nesting than any config or job needs; it also bounds the recursion of what reads
// the document later (schema validation, merge patches, printing).
constexpr std::size_t kMaxJsonDepth = 64;

// A first pass over the text: every duplicate key (JSON parsers keep one value silently) and
// nesting deeper than kMaxJsonDepth, with their JSON pointers.
class JsonChecks final : public nlohmann::json_sax<json> {
 public:
  std::vector<ConfigIssue> issues;
  bool too_deep = false;

  bool null() override { return value("null"); }
  bool boolean(bool v) override { return value(v ? "true" : "false"); }
  bool number_integer(number_integer_t v) override { return value(std::to_string(v)); }
  bool number_unsigned(number_unsigned_t v) override { return value(std::to_string(v)); }
  bool number_float(number_float_t v, const string_t& text) override {
    (void)v;
    return value(text);
  }
  bool string(string_t& v) override { return value("\"" + v + "\""); }
  bool binary(binary_t&) override { return value("binary"); }
  bool start_object(std::size_t) override { return open(true); }
  bool key(string_t& k) override {
    Level& level = levels_.back();
    level.key = k;
    level.duplicate = !level.keys.insert(k).second;
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(false); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  struct Level {
    bool object = false;
    std::set<std::string> keys;
    std::string key;
    bool duplicate = false;
    std::size_t index = 0;
  };
  std::string pointer() const {
    std::string out;
    for (const Level& level : levels_) out += "/" + (level.object ? escape_token(level.key) : std::to_string(level.index));
    return out;
  }
  // A value (or a container) has just begun in the innermost level.
  void note(const std::string& shown) {
    if (levels_.empty()) return;
    Level& level = levels_.back();
    if (level.object && level.duplicate) {
      issues.push_back({pointer(), "duplicate key '" + level.key + "': given more than once in the same object (the "
                                   "value " + shown + " would silently replace the earlier one); keep one"});
      level.duplicate = false;
    }
  }
  bool value(const std::string& shown) {
    note(shown);
    if (!levels_.empty() && !levels_.back().object) ++levels_.back().index;
    return true;
  }
  bool open(bool object) {
    note(object ? "{...}" : "[...]");
    if (levels_.size() >= kMaxJsonDepth) {
      too_deep = true;
      issues.push_back({pointer(), "nested more than " + std::to_string(kMaxJsonDepth) + " levels deep"});
      return false;  // stop reading: the rest of the document is not looked at
    }
    levels_.push_back(Level{object, {}, "", false, 0});
    return true;
  }
  bool close() {
    levels_.pop_back();
    if (!levels_.empty() && !levels_.back().object) ++levels_.back().index;
    return true;
  }
  std::vector<Level> levels_;
};

}  // namespace

json read_json_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) DUALRS_THROW(IoError, path, " is a directory, not a JSON file");
  std::ifstream in(path);
  if (!in) DUALRS_THROW(IoError, "cannot open ", path);
  const std::uintmax_t bytes = std::filesystem::file_size(path, ec);
  if (!ec && bytes > kMaxJsonBytes) {
    throw ConfigError(path, "", "is " + std::to_string(bytes >> 20) + " MiB; configs and jobs are small JSON files (at most " +
                                    std::to_string(kMaxJsonBytes >> 20) + " MiB) — is this the right file?");
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  JsonChecks checks;
  // A syntax error stops this pass too; the parse below then reports it with its position.
  json::sax_parse(text, &checks, json::input_format_t::json, false);
  if (!checks.issues.empty()) throw ConfigError(path, std::move(checks.issues));
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw ConfigError(path, "", std::string("not valid JSON (") + e.what() + ")");
  }
}

void absolutize_config_paths(json& doc, const std::string& base_dir) {
  if (!doc.is_object()) return;
  auto fix = [&](json& obj, const char* key) {
    if (obj.is_object() && obj.contains(key) && obj[key].is_string()) {
      obj[key] = make_absolute(obj[key].get<std::string>(), base_dir);
    }
  };
  if (doc.contains("dataset") && doc["dataset"].is_object()) {
    json& ds = doc["dataset"];
    for (const char* key : {"images", "labels", "root", "synsets", "val_labels"}) fix(ds, key);
    if (ds.contains("splits") && ds["splits"].is_object()) {
      for (auto& [name, value] : ds["splits"].items()) {
        if (value.is_string()) value = make_absolute(value.get<std::string>(), base_dir);
      }
    }
  }
  if (doc.contains("model")) {
    fix(doc["model"], "checkpoint");
    fix(doc["model"], "torchscript");
  }
  if (doc.contains("dual") && doc["dual"].is_object()) {
    json& dual = doc["dual"];
    if (dual.contains("estimator")) {
      fix(dual["estimator"], "checkpoint");
      fix(dual["estimator"], "torchscript");
    }
    if (dual.contains("experts") && dual["experts"].is_array()) {
      for (auto& e : dual["experts"]) {
        fix(e, "checkpoint");
        fix(e, "torchscript");
      }
    }
  }
  if (doc.contains("denoiser")) {
    fix(doc["denoiser"], "checkpoint");
    fix(doc["denoiser"], "torchscript");
  }
  if (doc.contains("train_estimator")) fix(doc["train_estimator"], "labels");
  if (doc.contains("finetune")) fix(doc["finetune"], "estimates");
}

ExperimentConfig ExperimentConfig::load(const std::string& path, const json& patch, const std::string& patch_base_dir) {
  json doc = read_json_file(path);
  const std::string base = fs::absolute(fs::path(path)).parent_path().string();
  absolutize_config_paths(doc, base);
  if (!patch.is_null() && !patch.empty()) {
    json p = patch;
    absolutize_config_paths(p, patch_base_dir.empty() ? fs::current_path().string() : patch_base_dir);
    doc.merge_patch(p);
  }
  return from_json(std::move(doc), path);
}

ExperimentConfig ExperimentConfig::from_json(json doc, std::string source) {
  validate_schema(doc, SchemaKind::kConfig, source);
  ExperimentConfig config(std::move(doc), std::move(source));
  return config;
}

DatasetConfig ExperimentConfig::dataset() const {
  if (!has("dataset")) throw ConfigError(source_, "/dataset", "missing section (this command needs a dataset)");
  const json& j = doc_.at("dataset");
  DatasetConfig c;
  c.name = get_or<std::string>(j, "name", "");
  c.format = get_enum_or(j, "format", c.format, "/dataset/format", source_);
  c.images = get_or<std::string>(j, "images", "");
  c.labels = get_or<std::string>(j, "labels", "");
  c.root = get_or<std::string>(j, "root", "");
  c.synsets = get_or<std::string>(j, "synsets", "");
  c.val_labels = get_or<std::string>(j, "val_labels", "");
  c.resize = get_or<std::int64_t>(j, "resize", c.resize);
  c.crop = get_or<std::int64_t>(j, "crop", c.crop);
  if (j.contains("splits")) c.splits = j.at("splits").get<std::map<std::string, std::string>>();
  // Which keys each format reads; a key of another format is a mistake, not a no-op.
  static const std::map<DatasetFormat, std::set<std::string>> kKeys = {
      {DatasetFormat::kMnistIdx, {"images", "labels"}},
      {DatasetFormat::kCifar10Bin, {"root"}},
      {DatasetFormat::kImagenetFolder, {"root", "synsets", "val_labels", "resize", "crop"}}};
  static const std::map<DatasetFormat, std::set<std::string>> kRequired = {
      {DatasetFormat::kMnistIdx, {"images", "labels"}},
      {DatasetFormat::kCifar10Bin, {"root"}},
      {DatasetFormat::kImagenetFolder, {"root", "synsets"}}};
  std::vector<ConfigIssue> issues;
  const std::string format = to_string(c.format);
  const auto& keys = kKeys.at(c.format);
  for (const char* key : {"images", "labels", "root", "synsets", "val_labels", "resize", "crop"}) {
    if (j.contains(key) && keys.count(key) == 0) {
      issues.push_back({std::string("/dataset/") + key, "not a key of format " + format});
    }
  }
  for (const auto& key : kRequired.at(c.format)) {
    if (!j.contains(key)) issues.push_back({"/dataset/" + key, "missing: format " + format + " needs it"});
  }
  if (c.crop > c.resize) {
    issues.push_back({"/dataset/crop", "crop " + std::to_string(c.crop) + " is larger than resize " + std::to_string(c.resize)});
  }
  if (!issues.empty()) throw ConfigError(source_, std::move(issues));
  return c;
}

ModelConfig ExperimentConfig::model() const {
  if (!has("model")) throw ConfigError(source_, "/model", "missing section (this command needs a model)");
  const json& j = doc_.at("model");
  ModelConfig c;
  c.arch = get_or<std::string>(j, "arch", "");
  c.checkpoint = get_or<std::string>(j, "checkpoint", "");
  c.torchscript = get_or<std::string>(j, "torchscript", "");
  c.num_classes = get_or<std::int64_t>(j, "num_classes", c.num_classes);
  c.device = get_or<std::string>(j, "device", c.device);
  parse_device(c.device, "/model/device", source_);
  c.optimize = get_or<bool>(j, "optimize", c.optimize);
  c.precision = read_precision(j, "/model", c.device, source_);
  c.allow_tf32 = get_or<bool>(j, "allow_tf32", c.allow_tf32);
  c.input = read_classifier_input(j, "/model", source_);
  if (!c.torchscript.empty() && !c.arch.empty()) {
    throw ConfigError(source_, "/model", "give either 'arch' (native model) or 'torchscript', not both");
  }
  if (!c.torchscript.empty() && !c.checkpoint.empty()) {
    // Which one would be used is a guess; say which file is meant.
    throw ConfigError(source_, "/model", "give either 'checkpoint' (native weights) or 'torchscript', not both");
  }
  if (c.torchscript.empty() && c.arch.empty()) {
    throw ConfigError(source_, "/model", "needs 'arch' (native model) or 'torchscript'");
  }
  return c;
}

CertifyConfig ExperimentConfig::certify() const {
  CertifyConfig c;
  const json j = doc_.value("certify", json::object());
  c.method = get_enum_or(j, "method", c.method, "/certify/method", source_);
  c.sigma = get_or<double>(j, "sigma", c.sigma);
  c.n0 = get_or<std::int64_t>(j, "n0", c.n0);
  c.n = get_or<std::int64_t>(j, "n", c.n);
  c.alpha = get_or<double>(j, "alpha", c.alpha);
  c.batch_size = get_or<std::int64_t>(j, "batch_size", c.batch_size);
  c.seed = get_or<std::uint64_t>(j, "seed", c.seed);
  c.selection = read_selection(j, c.selection);
  const DualAlpha split = dual_alpha_split(c.alpha, get_or<double>(j, "alpha_e", -1.0), get_or<double>(j, "alpha_c", -1.0));
  c.alpha_e = split.alpha_e;
  c.alpha_c = split.alpha_c;
  c.alpha_split = get_enum_or(j, "alpha_split", c.alpha_split, "/certify/alpha_split", source_);
  c.shard_size = get_or<std::int64_t>(j, "shard_size", c.shard_size);
  c.noise = get_enum_or(j, "noise", c.noise, "/certify/noise", source_);
  c.sampling = get_enum_or(j, "sampling", c.sampling, "/certify/sampling", source_);
  const json staged = j.value("staged", json::object());
  c.staged.looks = get_or<std::vector<std::int64_t>>(staged, "looks", c.staged.looks);
  c.staged.num_looks = get_or<std::int64_t>(staged, "num_looks", c.staged.num_looks);
  c.staged.last_look_alpha_share = get_or<double>(staged, "last_look_alpha_share", c.staged.last_look_alpha_share);
  c.staged.max_radius = get_or<double>(staged, "max_radius", c.staged.max_radius);
  c.staged.futility_beta = get_or<double>(staged, "futility_beta", c.staged.futility_beta);
  if (c.sampling == Sampling::kStaged) c.stop_radii = stop_radii(table_radii(table()), c.staged.max_radius);
  c.method_name = get_or<std::string>(j, "method_name", c.method_name);
  c.streams = get_enum_or(j, "streams", c.streams, "/certify/streams", source_);
  if (c.streams == NoiseStreams::kDualRsClassifier) {
    // Dual RS's classifier stage at this σ: its σ word and its level α_c (docs/method.md §10.2).
    if (c.method != Method::kGlobal) {
      throw ConfigError(source_, "/certify/streams",
                        "\"dual_rs_classifier\" is for method \"global\" (one σ of /dual/sigma_candidates), got method \"" +
                            to_string(c.method) + "\"");
    }
    const std::vector<double> sigmas = dual().sigma_candidates;
    const auto at = std::find(sigmas.begin(), sigmas.end(), c.sigma);
    if (at == sigmas.end()) {
      throw ConfigError(source_, "/certify/sigma",
                        "with streams \"dual_rs_classifier\" sigma must be one of /dual/sigma_candidates, got " +
                            format_decimal(c.sigma));
    }
    c.sigma_word = static_cast<std::uint32_t>(at - sigmas.begin());
    c.alpha = c.alpha_c;
  }
  validate_in(c, source_);
  return c;
}

PredictConfig ExperimentConfig::predict() const {
  PredictConfig c;
  const json j = doc_.value("predict", json::object());
  c.method = get_enum_or(j, "method", c.method, "/predict/method", source_);
  c.alpha_split = get_enum_or(j, "alpha_split", c.alpha_split, "/predict/alpha_split", source_);
  c.sigma = get_or<double>(j, "sigma", c.sigma);
  c.n = get_or<std::int64_t>(j, "n", c.n);
  c.alpha = get_or<double>(j, "alpha", c.alpha);
  c.batch_size = get_or<std::int64_t>(j, "batch_size", c.batch_size);
  c.seed = get_or<std::uint64_t>(j, "seed", c.seed);
  c.selection = read_selection(j, c.selection);
  c.shard_size = get_or<std::int64_t>(j, "shard_size", c.shard_size);
  c.noise = get_enum_or(j, "noise", c.noise, "/predict/noise", source_);
  validate_in(c, source_);
  return c;
}

TrainBaseConfig ExperimentConfig::train_base() const {
  TrainBaseConfig c;
  const json j = doc_.value("train_base", json::object());
  read_optimizer_keys(j, c);
  if (j.contains("sigma")) c.sigma = j.at("sigma").get<double>();
  c.sigma_candidates = get_or<std::vector<double>>(j, "sigma_candidates", {});
  c.seed = get_or<std::uint64_t>(j, "seed", c.seed);
  c.selection = read_selection(j, c.selection);
  c.loader_threads = read_loader_threads(j, "/train_base", source_);
  if (c.sigma && !c.sigma_candidates.empty()) {
    throw ConfigError(source_, "/train_base/sigma", "give either 'sigma' or 'sigma_candidates', not both");
  }
  if (!c.sigma && c.sigma_candidates.empty()) {
    throw ConfigError(source_, "/train_base", "needs a noise level: 'sigma' or 'sigma_candidates'");
  }
  return c;
}

TableConfig ExperimentConfig::table() const {
  TableConfig c;
  const json j = doc_.value("table", json::object());
  if (j.contains("radii") && j.at("radii").is_string()) c.radii_preset = j.at("radii").get<std::string>();
  else c.radii = get_or<std::vector<double>>(j, "radii", {});
  c.convention = get_enum_or(j, "convention", c.convention, "/table/convention", source_);
  for (std::size_t i = 1; i < c.radii.size(); ++i) {
    if (!(c.radii[i] > c.radii[i - 1])) {
      throw ConfigError(source_, "/table/radii/" + std::to_string(i),
                        "radii must be strictly increasing: " + format_decimal(c.radii[i]) + " follows " +
                            format_decimal(c.radii[i - 1]));
    }
  }
  return c;
}

PlotConfig ExperimentConfig::plot() const {
  PlotConfig c;
  const json j = doc_.value("plot", json::object());
  c.convention = get_enum_or(j, "convention", c.convention, "/plot/convention", source_);
  if (c.convention == TableConvention::kBoth) {
    throw ConfigError(source_, "/plot/convention", "must be inclusive or strict, got 'both'");
  }
  c.formats = get_or<std::vector<std::string>>(j, "formats", c.formats);
  return c;
}

namespace {
ModelRef read_model_ref(const json& j, const std::string& pointer, const std::string& source) {
  ModelRef r;
  r.arch = get_or<std::string>(j, "arch", "");
  r.checkpoint = get_or<std::string>(j, "checkpoint", "");
  r.torchscript = get_or<std::string>(j, "torchscript", "");
  r.device = get_or<std::string>(j, "device", r.device);
  parse_device(r.device, pointer + "/device", source);
  r.optimize = get_or<bool>(j, "optimize", r.optimize);
  r.precision = read_precision(j, pointer, r.device, source);
  r.allow_tf32 = get_or<bool>(j, "allow_tf32", r.allow_tf32);
  r.sigma = get_or<double>(j, "sigma", 0.0);
  r.input = read_classifier_input(j, pointer, source);
  if (!r.torchscript.empty() && !r.checkpoint.empty()) {
    throw ConfigError(source, pointer, "give either 'checkpoint' (native weights) or 'torchscript', not both");
  }
  return r;
}
}  // namespace

DualConfig ExperimentConfig::dual() const {
  if (!has("dual")) throw ConfigError(source_, "/dual", "missing section (this command needs sigma_candidates and sigma_e)");
  const json& j = doc_.at("dual");
  DualConfig c;
  c.sigma_candidates = get_or<std::vector<double>>(j, "sigma_candidates", {});
  c.sigma_e = get_or<double>(j, "sigma_e", c.sigma_e);
  c.allow_sigma_e_below_max = get_or<bool>(j, "allow_sigma_e_below_max", false);
  if (j.contains("estimator")) c.estimator = read_model_ref(j.at("estimator"), "/dual/estimator", source_);
  if (j.contains("experts")) {
    for (const auto& e : j.at("experts")) {
      c.experts.push_back(read_model_ref(e, "/dual/experts/" + std::to_string(c.experts.size()), source_));
    }
  }
  std::vector<ConfigIssue> issues;
  try {
    validate_sigma_candidates(c.sigma_candidates, "/dual/sigma_candidates");
  } catch (const ConfigError& e) {
    issues = e.issues();
  }
  if (issues.empty() && c.sigma_e < c.sigma_candidates.back() && !c.allow_sigma_e_below_max) {
    issues.push_back({"/dual/sigma_e", "sigma_e = " + format_decimal(c.sigma_e) + " is below max sigma_candidates = " +
                                           format_decimal(c.sigma_candidates.back()) +
                                           " (set allow_sigma_e_below_max to permit it)"});
  }
  if (c.routing() && issues.empty()) {
    for (std::size_t i = 0; i < c.sigma_candidates.size(); ++i) {
      const std::string ptr = "/dual/experts/" + std::to_string(i);
      if (i >= c.experts.size()) {
        issues.push_back({"/dual/experts", "routing needs one expert per sigma: no expert for sigma = " +
                                               format_decimal(c.sigma_candidates[i])});
        continue;
      }
      if (c.experts[i].empty()) issues.push_back({ptr, "needs 'arch' (+ checkpoint) or 'torchscript'"});
      if (c.experts[i].sigma != 0.0 && c.experts[i].sigma != c.sigma_candidates[i]) {
        issues.push_back({ptr + "/sigma", "expert " + std::to_string(i) + " serves sigma = " + format_decimal(c.experts[i].sigma) +
                                              " but sigma_candidates[" + std::to_string(i) + "] = " + format_decimal(c.sigma_candidates[i])});
      }
    }
    if (c.experts.size() > c.sigma_candidates.size()) {
      issues.push_back({"/dual/experts", std::to_string(c.experts.size()) + " experts for " +
                                             std::to_string(c.sigma_candidates.size()) + " sigma_candidates"});
    }
  }
  if (!issues.empty()) throw ConfigError(source_, std::move(issues));
  return c;
}

LabelConfig ExperimentConfig::label() const {
  LabelConfig c;
  const json j = doc_.value("label", json::object());
  c.n = get_or<std::int64_t>(j, "n", c.n);
  c.alpha = get_or<double>(j, "alpha", c.alpha);
  c.batch_size = get_or<std::int64_t>(j, "batch_size", c.batch_size);
  c.seed = get_or<std::uint64_t>(j, "seed", c.seed);
  c.selection = read_selection(j, c.selection);
  c.shard_size = get_or<std::int64_t>(j, "shard_size", c.shard_size);
  c.noise = get_enum_or(j, "noise", c.noise, "/label/noise", source_);
  validate_in(c, source_);
  return c;
}

EstimateSigmaConfig ExperimentConfig::estimate_sigma() const {
  EstimateSigmaConfig c;
  const json j = doc_.value("estimate_sigma", json::object());
  c.n = get_or<std::int64_t>(j, "n", c.n);
  c.batch_size = get_or<std::int64_t>(j, "batch_size", c.batch_size);
  c.seed = get_or<std::uint64_t>(j, "seed", c.seed);
  c.selection = read_selection(j, c.selection);
  c.shard_size = get_or<std::int64_t>(j, "shard_size", c.shard_size);
  c.noise = get_enum_or(j, "noise", c.noise, "/estimate_sigma/noise", source_);
  validate_in(c, source_);
  return c;
}

FinetuneConfig ExperimentConfig::finetune() const {
  FinetuneConfig c;
  const json j = doc_.value("finetune", json::object());
  c.estimates = get_or<std::string>(j, "estimates", "");
  c.epochs = get_or<std::int64_t>(j, "epochs", c.epochs);
  c.batch_size = get_or<std::int64_t>(j, "batch_size", c.batch_size);
  c.lr = get_or<double>(j, "lr", c.lr);
  c.weight_decay = get_or<double>(j, "weight_decay", c.weight_decay);
  c.seed = get_or<std::uint64_t>(j, "seed", c.seed);
  c.loader_threads = read_loader_threads(j, "/finetune", source_);
  if (c.estimates.empty()) throw ConfigError(source_, "/finetune/estimates", "missing: the sigma-estimates file to fine-tune with");
  return c;
}

std::optional<DenoiserConfig> ExperimentConfig::denoiser() const {
  if (!has("denoiser")) return std::nullopt;
  const json& j = doc_.at("denoiser");
  DenoiserConfig c;
  c.arch = get_or<std::string>(j, "arch", "");
  c.checkpoint = get_or<std::string>(j, "checkpoint", "");
  c.torchscript = get_or<std::string>(j, "torchscript", "");
  if (j.contains("schedule")) c.schedule = parse_schedule_kind(j.at("schedule").get<std::string>(), "/denoiser/schedule");
  c.steps = get_or<std::int64_t>(j, "steps", 0);
  c.rescale_timesteps = get_or<bool>(j, "rescale_timesteps", c.rescale_timesteps);
  c.device = get_or<std::string>(j, "device", c.device);
  parse_device(c.device, "/denoiser/device", source_);
  c.optimize = get_or<bool>(j, "optimize", c.optimize);
  c.precision = read_precision(j, "/denoiser", c.device, source_);
  if (c.arch.empty() == c.torchscript.empty()) {
    throw ConfigError(source_, "/denoiser",
                      "needs exactly one of 'arch' (native epsilon-model, with 'checkpoint') or 'torchscript'");
  }
  if (!c.torchscript.empty() && !c.checkpoint.empty()) {
    throw ConfigError(source_, "/denoiser/checkpoint", "a TorchScript denoiser takes no 'checkpoint'");
  }
  return c;
}

TrainDenoiserConfig ExperimentConfig::train_denoiser() const {
  TrainDenoiserConfig c;
  const json j = doc_.value("train_denoiser", json::object());
  read_optimizer_keys(j, c);
  c.sigmas = get_or<std::vector<double>>(j, "sigmas", {});
  c.t_window = get_or<double>(j, "t_window", c.t_window);
  c.validation_fraction = get_or<double>(j, "validation_fraction", c.validation_fraction);
  c.seed = get_or<std::uint64_t>(j, "seed", c.seed);
  c.selection = read_selection(j, c.selection);
  c.loader_threads = read_loader_threads(j, "/train_denoiser", source_);
  return c;
}

// Precision keys are written only when not the default (fp32, no TF32), as the noise keys are,
// so that the resolved config and resume key of a float32 run are those of earlier versions:
// a resolved config without /…/precision ran in fp32.
namespace {
void add_precision(json& j, Precision precision, bool allow_tf32) {
  if (precision != Precision::kFp32) j["precision"] = to_string(precision);
  if (allow_tf32) j["allow_tf32"] = true;
}
}  // namespace

json to_json(const ClassifierInputConfig& c) {
  return {{"input_range", to_string(c.range)}, {"input_size", json::array({c.height, c.width})}};
}
json to_json(const DenoiserConfig& c) {
  json j = {{"schedule", to_string(c.schedule)}, {"steps", c.steps}, {"rescale_timesteps", c.rescale_timesteps},
            {"device", c.device}, {"optimize", c.optimize}};
  if (!c.arch.empty()) j["arch"] = c.arch;
  if (!c.checkpoint.empty()) j["checkpoint"] = c.checkpoint;
  if (!c.torchscript.empty()) j["torchscript"] = c.torchscript;
  add_precision(j, c.precision, false);
  return j;
}
json to_json(const TrainDenoiserConfig& c) {
  json j = {{"epochs", c.epochs}, {"batch_size", c.batch_size}, {"lr", c.lr}, {"weight_decay", c.weight_decay},
            {"lr_step_epochs", c.lr_step_epochs}, {"lr_gamma", c.lr_gamma}, {"sigmas", c.sigmas}, {"t_window", c.t_window},
            {"validation_fraction", c.validation_fraction}, {"seed", c.seed}, {"selection", to_json(c.selection)}};
  if (c.loader_threads > 0) j["loader_threads"] = c.loader_threads;
  return j;
}

json to_json(const ModelRef& c) {
  json j = {{"device", c.device}, {"optimize", c.optimize}};
  if (!c.input.is_identity()) j["input"] = to_json(c.input);
  if (!c.arch.empty()) j["arch"] = c.arch;
  if (!c.checkpoint.empty()) j["checkpoint"] = c.checkpoint;
  if (!c.torchscript.empty()) j["torchscript"] = c.torchscript;
  if (c.sigma != 0.0) j["sigma"] = c.sigma;
  add_precision(j, c.precision, c.allow_tf32);
  return j;
}
json to_json(const DualConfig& c) {
  json experts = json::array();
  for (const auto& e : c.experts) experts.push_back(to_json(e));
  return {{"sigma_candidates", c.sigma_candidates}, {"sigma_e", c.sigma_e},
          {"allow_sigma_e_below_max", c.allow_sigma_e_below_max}, {"estimator", to_json(c.estimator)},
          {"experts", experts}};
}
// The noise and sampling keys are written only when not the default, so the resolved config
// (and so the resume key and the golden digests) of a run that does not use them is unchanged.
void add_noise(json& j, NoiseKind noise) {
  if (noise != NoiseKind::kGaussian) j["noise"] = to_string(noise);
}
json to_json(const LabelConfig& c) {
  json j = {{"n", c.n}, {"alpha", c.alpha}, {"batch_size", c.batch_size}, {"seed", c.seed}, {"selection", to_json(c.selection)},
            {"shard_size", c.shard_size}};
  add_noise(j, c.noise);
  return j;
}
json to_json(const EstimateSigmaConfig& c) {
  json j = {{"n", c.n}, {"batch_size", c.batch_size}, {"seed", c.seed}, {"selection", to_json(c.selection)},
            {"shard_size", c.shard_size}};
  add_noise(j, c.noise);
  return j;
}
json to_json(const TableConfig& c) {
  json j = {{"convention", to_string(c.convention)}};
  if (c.radii.empty()) j["radii"] = c.radii_preset.empty() ? "cifar10" : c.radii_preset;
  else j["radii"] = c.radii;
  return j;
}
json to_json(const PlotConfig& c) { return {{"convention", to_string(c.convention)}, {"formats", c.formats}}; }
json to_json(const FinetuneConfig& c) {
  json j = {{"estimates", c.estimates}, {"epochs", c.epochs}, {"batch_size", c.batch_size}, {"lr", c.lr},
            {"weight_decay", c.weight_decay}, {"seed", c.seed}};
  if (c.loader_threads > 0) j["loader_threads"] = c.loader_threads;
  return j;
}

ModelConfig to_model_config(const ModelRef& ref, std::int64_t num_classes) {
  ModelConfig m;
  m.arch = ref.arch;
  m.checkpoint = ref.checkpoint;
  m.torchscript = ref.torchscript;
  m.device = ref.device;
  m.input = ref.input;
  m.optimize = ref.optimize;
  m.precision = ref.precision;
  m.allow_tf32 = ref.allow_tf32;
  m.num_classes = num_classes;
  return m;
}

json to_json(const SelectionConfig& c) {
  return {{"split", c.split}, {"begin", c.begin}, {"end", c.end}, {"skip", c.skip}};
}
json to_json(const DatasetConfig& c) {
  json j = {{"name", c.name}, {"format", to_string(c.format)}, {"splits", c.splits}};
  if (c.format == DatasetFormat::kMnistIdx) {
    j["images"] = c.images;
    j["labels"] = c.labels;
  } else {
    j["root"] = c.root;
  }
  if (c.format == DatasetFormat::kImagenetFolder) {
    j["synsets"] = c.synsets;
    j["val_labels"] = c.val_labels;
    j["resize"] = c.resize;
    j["crop"] = c.crop;
  }
  return j;
}
json to_json(const ModelConfig& c) {
  json j = {{"num_classes", c.num_classes}, {"device", c.device}, {"optimize", c.optimize}};
  if (!c.input.is_identity()) j["input"] = to_json(c.input);
  if (!c.arch.empty()) j["arch"] = c.arch;
  if (!c.checkpoint.empty()) j["checkpoint"] = c.checkpoint;
  if (!c.torchscript.empty()) j["torchscript"] = c.torchscript;
  add_precision(j, c.precision, c.allow_tf32);
  return j;
}
json to_json(const CertifyConfig& c) {
  json j = {{"method", to_string(c.method)}, {"sigma", c.sigma}, {"n0", c.n0}, {"n", c.n}, {"alpha", c.alpha},
            {"alpha_e", c.alpha_e}, {"alpha_c", c.alpha_c}, {"alpha_split", to_string(c.alpha_split)},
            {"batch_size", c.batch_size}, {"seed", c.seed}, {"selection", to_json(c.selection)},
            {"shard_size", c.shard_size}};
  add_noise(j, c.noise);
  if (c.sampling != Sampling::kFixed) {
    j["sampling"] = to_string(c.sampling);
    j["staged"] = {{"looks", c.staged.looks}, {"num_looks", c.staged.num_looks},
                   {"last_look_alpha_share", c.staged.last_look_alpha_share}, {"max_radius", c.staged.max_radius},
                   {"futility_beta", c.staged.futility_beta},
                   {"stop_radii", c.stop_radii}};
  }
  if (!c.method_name.empty()) j["method_name"] = c.method_name;
  if (c.streams != NoiseStreams::kGlobal) {
    j["streams"] = to_string(c.streams);
    j["sigma_word"] = c.sigma_word;
  }
  return j;
}
json to_json(const PredictConfig& c) {
  json j = {{"method", to_string(c.method)}, {"alpha_split", to_string(c.alpha_split)}, {"sigma", c.sigma}, {"n", c.n}, {"alpha", c.alpha}, {"batch_size", c.batch_size},
            {"seed", c.seed}, {"selection", to_json(c.selection)}, {"shard_size", c.shard_size}};
  add_noise(j, c.noise);
  return j;
}
json to_json(const TrainBaseConfig& c) {
  json j = {{"epochs", c.epochs}, {"batch_size", c.batch_size}, {"lr", c.lr}, {"weight_decay", c.weight_decay},
            {"lr_step_epochs", c.lr_step_epochs}, {"lr_gamma", c.lr_gamma}, {"seed", c.seed},
            {"selection", to_json(c.selection)}};
  if (c.sigma) j["sigma"] = *c.sigma;
  else j["sigma_candidates"] = c.sigma_candidates;
  if (c.loader_threads > 0) j["loader_threads"] = c.loader_threads;
  return j;
}

std::string to_string(Method method) { return name_of(method); }
std::string to_string(DatasetFormat format) { return name_of(format); }
std::string to_string(TableConvention convention) { return name_of(convention); }
std::string to_string(AlphaSplit split) { return name_of(split); }
std::string to_string(RadiusWeight weight) { return name_of(weight); }
std::string to_string(InputRange range) { return name_of(range); }
std::string to_string(DeviceKind kind) { return name_of(kind); }
std::string to_string(NoiseKind kind) { return name_of(kind); }
std::string to_string(Sampling sampling) { return name_of(sampling); }
std::string to_string(NoiseStreams streams) { return name_of(streams); }
std::string to_string(EstimatorTarget target) { return name_of(target); }
std::string to_string(Precision precision) { return name_of(precision); }
std::string to_string(const DeviceSpec& device) {
  return name_of(device.kind) + (device.index >= 0 ? ":" + std::to_string(device.index) : "");
}

Method parse_method(const std::string& name, const std::string& pointer, const std::string& source) {
  return parse_name<Method>(name, pointer, source);
}
DatasetFormat parse_dataset_format(const std::string& name, const std::string& pointer, const std::string& source) {
  return parse_name<DatasetFormat>(name, pointer, source);
}
TableConvention parse_table_convention(const std::string& name, const std::string& pointer, const std::string& source) {
  return parse_name<TableConvention>(name, pointer, source);
}
AlphaSplit parse_alpha_split(const std::string& name, const std::string& pointer, const std::string& source) {
  return parse_name<AlphaSplit>(name, pointer, source);
}
RadiusWeight parse_radius_weight(const std::string& name, const std::string& pointer, const std::string& source) {
  return parse_name<RadiusWeight>(name, pointer, source);
}
InputRange parse_input_range(const std::string& name, const std::string& pointer, const std::string& source) {
  return parse_name<InputRange>(name, pointer, source);
}

DeviceSpec parse_device(const std::string& name, const std::string& pointer, const std::string& source) {
  DeviceSpec d;
  const std::size_t colon = name.find(':');
  const std::string kind = name.substr(0, colon);
  bool ok = kind == "cpu" || kind == "cuda";
  if (ok) d.kind = kind == "cpu" ? DeviceKind::kCpu : DeviceKind::kCuda;
  if (ok && colon != std::string::npos) {
    const std::string index = name.substr(colon + 1);
    int value = -1;
    const auto [end, ec] = std::from_chars(index.data(), index.data() + index.size(), value);
    ok = d.kind == DeviceKind::kCuda && !index.empty() && ec == std::errc() && end == index.data() + index.size() && value >= 0;
    d.index = value;
  }
  if (!ok) throw ConfigError(source, pointer, "must be cpu, cuda or cuda:N (N = a GPU number), got '" + name + "'");
  return d;
}

namespace {
// The paper's estimator recipes [DualRS §5.2, Appendix; docs/method.md §6], as data: the keys
// a preset sets; everything else keeps the TrainEstimatorConfig defaults.
struct EstimatorRecipe {
  const char* name;
  std::int64_t epochs, batch_size, m;
  double lr, weight_decay;
  std::int64_t lr_step_epochs;
  double lr_gamma, lambda, eta;
  RadiusWeight radius_weight;
};
constexpr EstimatorRecipe kEstimatorRecipes[] = {
    {"cifar10", 90, 128, 2, 0.01, 0.01, 30, 0.5, 40.0, 0.5, RadiusWeight::kStrong},
    {"imagenet", 9, 200, 2, 0.005, 0.01, 3, 0.5, 10.0, 0.5, RadiusWeight::kWeak},
};
}  // namespace

TrainEstimatorConfig train_estimator_preset(const std::string& name) {
  TrainEstimatorConfig c;
  c.preset = name;
  if (name.empty()) return c;
  for (const EstimatorRecipe& r : kEstimatorRecipes) {
    if (name != r.name) continue;
    c.epochs = r.epochs;
    c.batch_size = r.batch_size;
    c.m = r.m;
    c.lr = r.lr;
    c.weight_decay = r.weight_decay;
    c.lr_step_epochs = r.lr_step_epochs;
    c.lr_gamma = r.lr_gamma;
    c.lambda = r.lambda;
    c.eta = r.eta;
    c.radius_weight = r.radius_weight;
    return c;
  }
  throw ConfigError("", "/train_estimator/preset", "unknown preset '" + name + "' (cifar10, imagenet)");
}

TrainEstimatorConfig ExperimentConfig::train_estimator() const {
  const json j = doc_.value("train_estimator", json::object());
  TrainEstimatorConfig c;
  try {
    c = train_estimator_preset(get_or<std::string>(j, "preset", ""));
  } catch (const ConfigError& e) {
    throw ConfigError(source_, e.issues());
  }
  if (has("dual")) c.sigma_e = get_or<double>(doc_.at("dual"), "sigma_e", DualConfig{}.sigma_e);
  c.epochs = get_or<std::int64_t>(j, "epochs", c.epochs);
  c.batch_size = get_or<std::int64_t>(j, "batch_size", c.batch_size);
  c.m = get_or<std::int64_t>(j, "m", c.m);
  c.lr = get_or<double>(j, "lr", c.lr);
  c.weight_decay = get_or<double>(j, "weight_decay", c.weight_decay);
  c.lr_step_epochs = get_or<std::int64_t>(j, "lr_step_epochs", c.lr_step_epochs);
  c.lr_gamma = get_or<double>(j, "lr_gamma", c.lr_gamma);
  c.lambda = get_or<double>(j, "lambda", c.lambda);
  c.eta = get_or<double>(j, "eta", c.eta);
  c.radius_weight = get_enum_or(j, "radius_weight", c.radius_weight, "/train_estimator/radius_weight", source_);
  c.loss = get_enum_or(j, "loss", c.loss, "/train_estimator/loss", source_);
  c.rebalance = get_or<bool>(j, "rebalance", c.rebalance);
  c.validation_fraction = get_or<double>(j, "validation_fraction", c.validation_fraction);
  c.seed = get_or<std::uint64_t>(j, "seed", c.seed);
  c.labels = get_or<std::string>(j, "labels", "");
  c.init_checkpoint = get_or<std::string>(j, "init_checkpoint", "");
  c.loader_threads = read_loader_threads(j, "/train_estimator", source_);
  validate_in(c, source_);
  return c;
}

json to_json(const TrainEstimatorConfig& c) {
  json j = {{"preset", c.preset}, {"sigma_e", c.sigma_e}, {"epochs", c.epochs}, {"batch_size", c.batch_size},
            {"m", c.m}, {"lr", c.lr}, {"weight_decay", c.weight_decay}, {"lr_step_epochs", c.lr_step_epochs},
            {"lr_gamma", c.lr_gamma}, {"lambda", c.lambda}, {"eta", c.eta}, {"radius_weight", to_string(c.radius_weight)},
            {"rebalance", c.rebalance}, {"validation_fraction", c.validation_fraction}, {"seed", c.seed}};
  if (!c.init_checkpoint.empty()) j["init_checkpoint"] = c.init_checkpoint;
  if (c.loss != EstimatorTarget::kSoftCe) j["loss"] = to_string(c.loss);
  if (c.loader_threads > 0) j["loader_threads"] = c.loader_threads;
  return j;
}

namespace {
// The checks CERTIFY and PREDICT share, under `section`.
void check_smoothing(std::vector<ConfigIssue>& issues, const std::string& section, double sigma, double alpha,
                     std::int64_t n, std::int64_t batch_size, std::int64_t shard_size) {
  if (!(sigma > 0)) issues.push_back({section + "/sigma", "must be > 0, got " + std::to_string(sigma)});
  if (!(alpha > 0 && alpha < 1)) issues.push_back({section + "/alpha", "must be in (0, 1), got " + std::to_string(alpha)});
  if (n < 1) issues.push_back({section + "/n", "must be >= 1, got " + std::to_string(n)});
  if (batch_size < 1) issues.push_back({section + "/batch_size", "must be >= 1, got " + std::to_string(batch_size)});
  if (shard_size < 1) issues.push_back({section + "/shard_size", "must be >= 1, got " + std::to_string(shard_size)});
}

void throw_if_any(std::vector<ConfigIssue> issues) {
  if (!issues.empty()) throw ConfigError("", std::move(issues));
}
}  // namespace

void validate(const CertifyConfig& c) {
  std::vector<ConfigIssue> issues;
  check_smoothing(issues, "/certify", c.sigma, c.alpha, c.n, c.batch_size, c.shard_size);
  if (c.n0 < 1) issues.push_back({"/certify/n0", "must be >= 1, got " + std::to_string(c.n0)});
  if (!c.method_name.empty() &&
      c.method_name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != std::string::npos) {
    issues.push_back({"/certify/method_name", "may hold only letters, digits, '_', '.' and '-', got \"" + c.method_name + "\""});
  }
  for (const auto& [key, value] : {std::pair<const char*, double>{"alpha_e", c.alpha_e}, {"alpha_c", c.alpha_c}}) {
    if (!(value < 0 || (value > 0 && value < 1))) {  // negative: not given, alpha/2 (dual_alpha_split)
      issues.push_back({std::string("/certify/") + key, "must be in (0, 1), got " + std::to_string(value)});
    }
  }
  if (c.sampling == Sampling::kStaged) {
    const StagedConfig& s = c.staged;
    for (std::size_t i = 0; i < s.looks.size(); ++i) {
      const std::string at = "/certify/staged/looks/" + std::to_string(i);
      if (s.looks[i] < 1) issues.push_back({at, "must be >= 1, got " + std::to_string(s.looks[i])});
      if (s.looks[i] > c.n) {
        issues.push_back({at, "look " + std::to_string(s.looks[i]) + " exceeds n = " + std::to_string(c.n)});
      }
      if (i > 0 && s.looks[i] <= s.looks[i - 1]) {
        issues.push_back({at, "looks must increase: " + std::to_string(s.looks[i]) + " follows " +
                                  std::to_string(s.looks[i - 1])});
      }
    }
    if (s.looks.empty() && (s.num_looks < 1 || s.num_looks > c.n)) {
      issues.push_back({"/certify/staged/num_looks", "must be in [1, n = " + std::to_string(c.n) + "], got " +
                                                         std::to_string(s.num_looks)});
    }
    if (!(s.last_look_alpha_share > 0 && s.last_look_alpha_share <= 1)) {
      issues.push_back({"/certify/staged/last_look_alpha_share",
                        "must be in (0, 1] (the looks' alphas must sum to at most alpha), got " +
                            std::to_string(s.last_look_alpha_share)});
    }
    if (!(s.futility_beta >= 0 && s.futility_beta < 1)) {
      issues.push_back({"/certify/staged/futility_beta", "must be in [0, 1), got " + std::to_string(s.futility_beta)});
    }
    for (std::size_t i = 1; i < c.stop_radii.size(); ++i) {
      if (!(c.stop_radii[i] > c.stop_radii[i - 1])) {
        issues.push_back({"/table/radii", "the staged stops need an increasing radius grid"});
        break;
      }
    }
  }
  throw_if_any(std::move(issues));
}

std::vector<double> stop_radii(const std::vector<double>& grid, double max_radius) {
  std::vector<double> out{0.0};
  for (const double r : grid) {
    if (r > out.back() && (max_radius < 0 || r < max_radius)) out.push_back(r);
  }
  if (max_radius > out.back()) out.push_back(max_radius);
  return out;
}

std::vector<double> radius_preset(const std::string& name) {
  if (name == "cifar10") {
    std::vector<double> radii;
    for (int i = 0; i <= 10; ++i) radii.push_back(0.25 * i);
    return radii;
  }
  if (name == "imagenet") return {0.0, 0.5, 1.0, 1.5, 2.0};
  throw ConfigError("", "/table/radii", "unknown radius grid '" + name + "' (cifar10 or imagenet, or a list of radii)");
}

std::vector<double> default_radii() { return radius_preset("cifar10"); }

std::vector<double> table_radii(const TableConfig& table) {
  if (!table.radii.empty()) return table.radii;
  return table.radii_preset.empty() ? default_radii() : radius_preset(table.radii_preset);
}

void validate(const PredictConfig& c) {
  std::vector<ConfigIssue> issues;
  check_smoothing(issues, "/predict", c.sigma, c.alpha, c.n, c.batch_size, c.shard_size);
  throw_if_any(std::move(issues));
}

void validate(const LabelConfig& c) {
  std::vector<ConfigIssue> issues;
  if (c.n < 1) issues.push_back({"/label/n", "must be >= 1"});
  if (!(c.alpha > 0 && c.alpha < 1)) issues.push_back({"/label/alpha", "must be in (0, 1)"});
  if (c.batch_size < 1) issues.push_back({"/label/batch_size", "must be >= 1"});
  if (c.shard_size < 1) issues.push_back({"/label/shard_size", "must be >= 1"});
  throw_if_any(std::move(issues));
}

void validate(const EstimateSigmaConfig& c) {
  std::vector<ConfigIssue> issues;
  if (c.n < 1) issues.push_back({"/estimate_sigma/n", "must be >= 1"});
  if (c.batch_size < 1) issues.push_back({"/estimate_sigma/batch_size", "must be >= 1"});
  if (c.shard_size < 1) issues.push_back({"/estimate_sigma/shard_size", "must be >= 1"});
  throw_if_any(std::move(issues));
}

void validate(const TrainEstimatorConfig& c) {
  std::vector<ConfigIssue> issues;
  const std::string p = "/train_estimator/";
  if (!(c.sigma_e > 0)) issues.push_back({"/dual/sigma_e", "must be > 0"});
  if (c.epochs < 1) issues.push_back({p + "epochs", "must be >= 1"});
  if (c.batch_size < 1) issues.push_back({p + "batch_size", "must be >= 1"});
  if (c.m < 1) issues.push_back({p + "m", "must be >= 1"});
  if (!(c.lr > 0)) issues.push_back({p + "lr", "must be > 0"});
  if (c.lambda < 0) issues.push_back({p + "lambda", "must be >= 0"});
  if (c.eta < 0) issues.push_back({p + "eta", "must be >= 0"});
  if (!(c.validation_fraction >= 0 && c.validation_fraction < 1)) issues.push_back({p + "validation_fraction", "must be in [0, 1)"});
  throw_if_any(std::move(issues));
}

std::string format_decimal(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // std::to_chars writes the shortest text that round-trips in the notation asked for;
  // repr() picks fixed notation for decimal exponents -4 to 15 and adds ".0" to integers.
  const double magnitude = std::fabs(value);
  const bool fixed = magnitude == 0.0 || (magnitude >= 1e-4 && magnitude < 1e16);
  char buf[64];  // fixed notation is only used below 1e16
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value,
                                       fixed ? std::chars_format::fixed : std::chars_format::scientific);
  if (ec != std::errc()) DUALRS_THROW(Error, "format_decimal: the buffer did not hold a double");
  std::string out(buf, end);
  if (fixed && out.find('.') == std::string::npos) out += ".0";
  return out;
}

std::string global_method_name(double sigma) { return "global_sigma_" + format_decimal(sigma); }

}  // namespace core
}  // namespace dualrs
