#include "dualrs/pipeline/calibration.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <utility>

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "dualrs/core/diffusion_schedule.h"
#include "dualrs/core/error.h"
#include "dualrs/io/provenance.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/denoised_classifier.h"
#include "dualrs/model/diffusion_denoiser.h"
#include "dualrs/model/epsilon_model.h"
#include "dualrs/pipeline/model_assembly.h"

namespace dualrs::pipeline {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Rows per second of `step` (which processes `rows` rows): one warm-up call, then calls until
// `seconds` have passed (at least two).
double measure_rate(const std::function<void()>& step, std::int64_t rows, double seconds) {
  step();
  std::int64_t done = 0;
  const Clock::time_point t0 = Clock::now();
  do {
    step();
    done += rows;
  } while (seconds_since(t0) < seconds || done < 2 * rows);
  return static_cast<double>(done) / seconds_since(t0);
}

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown CPU";
}

// A model section as the loader takes it (core's to_model_config), with `device` when given.
ModelConfig as_model_config(const ModelRef& ref, std::int64_t outputs, const std::string& device) {
  ModelConfig m = to_model_config(ref, outputs);
  if (!device.empty()) m.device = device;
  return m;
}

// The model an inference stage runs (frozen unless /optimize is false), with fresh weights
// when its checkpoint is not there yet; `weights` says which.
std::shared_ptr<model::BaseModel> inference_model(const ModelConfig& m, const std::string& pointer, std::string& weights) {
  std::shared_ptr<model::BaseModel> loaded;
  if (!m.torchscript.empty() || (!m.checkpoint.empty() && fs::is_regular_file(m.checkpoint))) {
    weights = m.torchscript.empty() ? "checkpoint" : "torchscript";
    loaded = model::load_model(m, model::ModelUse::kInference, pointer);
  } else {
    weights = "fresh";
    std::unique_ptr<model::BaseModel> native = model::make_native_model(m.arch, m.num_classes);
    native->to_device(m.device);
    loaded = m.optimize ? model::prepare_for_inference(std::move(native), pointer) : std::move(native);
  }
  return model::adapt_input(std::move(loaded), m.input);
}

at::Tensor random_batch(std::int64_t rows, const std::vector<std::int64_t>& image_shape, const std::string& device) {
  std::vector<std::int64_t> shape{rows};
  shape.insert(shape.end(), image_shape.begin(), image_shape.end());
  torch::manual_seed(0);
  return torch::rand(shape).to(model::parse_device(device));
}

ModelRate inference_rate(const ModelConfig& m, const std::string& pointer, std::int64_t batch,
                         const std::vector<std::int64_t>& image_shape, double seconds) {
  ModelRate rate;
  rate.arch = m.torchscript.empty() ? m.arch : m.torchscript;
  rate.device = m.device;
  rate.batch_size = batch;
  rate.precision = to_string(m.precision);
  const std::shared_ptr<model::BaseModel> net = inference_model(m, pointer, rate.weights);
  const at::Tensor x = random_batch(batch, image_shape, m.device);
  torch::NoGradGuard no_grad;
  rate.samples_per_s = measure_rate([&] { (void)net->logits(x).sum().item<double>(); }, batch, seconds);
  return rate;
}

// Forward + backward of the eager native model (what the training stages run), without the
// optimizer step (a small share of a step for these models).
ModelRate training_rate(const ModelConfig& m, std::int64_t rows, const std::vector<std::int64_t>& image_shape,
                        double seconds) {
  ModelRate rate;
  rate.arch = m.arch;
  rate.device = m.device;
  rate.batch_size = rows;
  rate.weights = "fresh";
  std::shared_ptr<model::BaseModel> net = model::make_native_model(m.arch, m.num_classes);
  net->to_device(m.device);
  net->set_training(true);
  net = model::adapt_input(std::move(net), m.input);
  const at::Tensor x = random_batch(rows, image_shape, m.device);
  rate.samples_per_s = measure_rate(
      [&] {
        const at::Tensor loss = torch::logsumexp(net->logits(x), 1).mean();
        loss.backward();
        (void)loss.item<double>();
      },
      rows, seconds);
  return rate;
}

}  // namespace

Calibration measure_calibration(const ExperimentConfig& config, const std::string& device, double seconds,
                                const std::function<void(const std::string&)>& say) {
  if (!(seconds > 0)) throw ConfigError("command line", "--seconds", "must be > 0");
  Calibration c;
  c.config_source = config.source();
  c.config_name = config.doc().value("name", "");
  const ModelConfig classifier = [&] {
    ModelConfig m = config.model();
    if (!device.empty()) m.device = device;
    return m;
  }();
  c.device = classifier.device;
  c.device_name = c.device.rfind("cuda", 0) == 0 ? "CUDA device " + c.device : cpu_name();
  c.library_versions = io::make_provenance("dualrs.calibration", "calibrate", config.doc(), 0, 0).library_versions +
                       "; torch " + std::string(TORCH_VERSION);
  c.threads = at::get_num_threads();
  c.created_utc = io::utc_now();

  const CertifyConfig certify = config.certify();
  const DataSelection in = load_selection(config, certify.selection, "/certify/selection");
  const std::vector<std::int64_t> image_shape = in.dataset.image_shape();
  const auto report = [&](const std::string& key) {
    const ModelRate& r = c.rates.at(key);
    std::ostringstream line;
    line << "calibrate: " << key << " (" << r.arch << ", " << r.weights << " weights, " << r.device << ", batch "
         << r.batch_size << "): " << static_cast<std::int64_t>(r.samples_per_s) << " samples/s";
    say(line.str());
  };

  c.rates["classifier"] = inference_rate(classifier, "/model", certify.batch_size, image_shape, seconds);
  report("classifier");
  if (classifier.torchscript.empty()) {
    c.rates["classifier training"] = training_rate(classifier, config.train_base().batch_size, image_shape, seconds);
    report("classifier training");
  }
  if (config.has("dual")) {
    const DualConfig dual = config.dual();
    const auto s = static_cast<std::int64_t>(dual.sigma_candidates.size());
    if (!dual.estimator.empty()) {
      const ModelConfig estimator = as_model_config(dual.estimator, s, device);
      c.rates["estimator"] = inference_rate(estimator, "/dual/estimator", certify.batch_size, image_shape, seconds);
      report("estimator");
      if (estimator.torchscript.empty()) {
        const TrainEstimatorConfig train = config.train_estimator();
        c.rates["estimator training"] = training_rate(estimator, train.batch_size * train.m, image_shape, seconds);
        report("estimator training");
      }
    }
    if (!dual.experts.empty()) {  // one expert stands for all: they share an architecture in the paper's jobs
      c.rates["experts"] = inference_rate(as_model_config(dual.experts.front(), in.dataset.num_classes(), device),
                                          "/dual/experts/0", certify.batch_size, image_shape, seconds);
      report("experts");
    }
  }
  if (const std::optional<DenoiserConfig> denoiser_config = config.denoiser()) {
    DenoiserConfig d = *denoiser_config;
    if (!device.empty()) d.device = device;
    std::shared_ptr<model::DiffusionDenoiser> denoiser;
    std::string weights = d.torchscript.empty() ? "checkpoint" : "torchscript";
    if (d.torchscript.empty() && !fs::is_regular_file(d.checkpoint)) {
      // train-denoiser writes it later in the job: the same network with fresh weights.
      weights = "fresh";
      std::unique_ptr<model::EpsilonModel> eps = model::make_native_epsilon_model(d.arch);
      eps->to_device(d.device);
      if (d.optimize) eps = model::prepare_epsilon_for_inference(std::move(eps));
      denoiser = std::make_shared<model::DiffusionDenoiser>(std::move(eps),
                                                            make_schedule(d.schedule, d.steps, d.rescale_timesteps));
    } else {
      denoiser = model::load_denoiser(d);
    }
    {
      const double sigma = certify.sigma > 0 ? certify.sigma : 0.25;
      const at::Tensor x = random_batch(certify.batch_size, image_shape, d.device);
      torch::NoGradGuard no_grad;
      ModelRate r;
      r.arch = d.torchscript.empty() ? d.arch : d.torchscript;
      r.device = d.device;
      r.batch_size = certify.batch_size;
      r.weights = weights;
      r.samples_per_s = measure_rate([&] { (void)denoiser->denoise(x, sigma).sum().item<double>(); }, certify.batch_size,
                                     seconds);
      c.rates["denoiser"] = r;
      report("denoiser");
    }
  }

  // The loader: decode the first images of the selection, one at a time, as the stages do.
  const std::int64_t count = std::min<std::int64_t>(static_cast<std::int64_t>(in.indices.size()), 512);
  const Clock::time_point t0 = Clock::now();
  for (std::int64_t i = 0; i < count; ++i) (void)in.dataset.image(in.indices[static_cast<std::size_t>(i)]);
  c.input_images = count;
  c.input_images_per_s = count > 0 ? static_cast<double>(count) / std::max(seconds_since(t0), 1e-9) : 0.0;
  say("calibrate: input (" + in.dataset.name() + "): " + std::to_string(static_cast<std::int64_t>(c.input_images_per_s)) +
      " images/s over " + std::to_string(count) + " images");
  return c;
}

json to_json(const Calibration& c) {
  json rates = json::object();
  for (const auto& [key, r] : c.rates) {
    rates[key] = {{"arch", r.arch}, {"device", r.device}, {"batch_size", r.batch_size},
                  {"samples_per_s", r.samples_per_s}, {"weights", r.weights}, {"precision", r.precision}};
  }
  return {{"schema", "dualrs.calibration"}, {"schema_version", 1},      {"config", c.config_source},
          {"config_name", c.config_name},   {"device", c.device},       {"device_name", c.device_name},
          {"library_versions", c.library_versions}, {"threads", c.threads}, {"created_utc", c.created_utc},
          {"rates", rates},
          {"input", {{"images_per_s", c.input_images_per_s}, {"images", c.input_images}}}};
}

Calibration read_calibration(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path, "", "cannot read the calibration file (make it with 'dualrs calibrate -c CONFIG')");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw ConfigError(path, "", std::string("not JSON: ") + e.what());
  }
  const auto need = [&](const json& node, const std::string& key, const std::string& pointer) -> const json& {
    if (!node.is_object() || !node.contains(key)) throw ConfigError(path, pointer + "/" + key, "missing");
    return node.at(key);
  };
  if (j.value("schema", "") != "dualrs.calibration") {
    throw ConfigError(path, "/schema", "is not \"dualrs.calibration\": not a file written by 'dualrs calibrate'");
  }
  Calibration c;
  try {
    c.config_source = need(j, "config", "").get<std::string>();
    c.config_name = j.value("config_name", "");
    c.device = need(j, "device", "").get<std::string>();
    c.device_name = j.value("device_name", "");
    c.library_versions = j.value("library_versions", "");
    c.threads = j.value("threads", 0);
    c.created_utc = j.value("created_utc", "");
    for (const auto& [key, r] : need(j, "rates", "").items()) {
      ModelRate rate;
      rate.arch = need(r, "arch", "/rates/" + key).get<std::string>();
      rate.device = need(r, "device", "/rates/" + key).get<std::string>();
      rate.batch_size = r.value("batch_size", std::int64_t{0});
      rate.samples_per_s = need(r, "samples_per_s", "/rates/" + key).get<double>();
      rate.weights = r.value("weights", "");
      rate.precision = r.value("precision", "fp32");
      if (!(rate.samples_per_s > 0)) {
        throw ConfigError(path, "/rates/" + key + "/samples_per_s", "must be > 0, got " + std::to_string(rate.samples_per_s));
      }
      c.rates[key] = rate;
    }
    if (j.contains("input")) c.input_images_per_s = j["input"].value("images_per_s", 0.0);
  } catch (const json::exception& e) {
    throw ConfigError(path, "", std::string("malformed: ") + e.what());
  }
  return c;
}

Projection project(const std::vector<ForwardPasses>& passes, const Calibration& calibration, int ranks) {
  Projection p;
  const double k = std::max(1, ranks);
  for (const ForwardPasses& f : passes) {
    const std::optional<std::int64_t> total = f.total();
    if (!total) {
      p.unknown_examples = true;
      continue;
    }
    const std::string key = f.model + (f.training ? " training" : "");
    const auto rate = calibration.rates.find(key);
    if (rate == calibration.rates.end()) {
      if (std::find(p.unmeasured.begin(), p.unmeasured.end(), key) == p.unmeasured.end()) p.unmeasured.push_back(key);
      continue;
    }
    p.seconds += static_cast<double>(*total) / rate->second.samples_per_s / k;
  }
  p.device_hours = p.seconds * k / 3600.0;
  return p;
}

std::vector<std::string> calibration_mismatches(const ExperimentConfig& config, const Calibration& calibration) {
  std::vector<std::string> lines;
  const auto kind = [](const std::string& device) { return device.substr(0, device.find(':')); };
  const auto check = [&](const std::string& key, const std::string& arch, const std::string& device, Precision precision) {
    const auto r = calibration.rates.find(key);
    if (r == calibration.rates.end()) return;
    const std::string p = to_string(precision);
    if (r->second.arch != arch || kind(r->second.device) != kind(device) || r->second.precision != p) {
      lines.push_back(key + ": the stage uses " + arch + " on " + device + " in " + p + ", the calibration measured " +
                      r->second.arch + " on " + r->second.device + " in " + r->second.precision + " (" +
                      calibration.config_source + ")");
    }
  };
  if (config.has("model")) {
    const ModelConfig m = config.model();
    check("classifier", m.torchscript.empty() ? m.arch : m.torchscript, m.device, m.precision);
  }
  if (config.has("dual")) {
    const DualConfig dual = config.dual();
    if (!dual.estimator.empty()) {
      check("estimator", dual.estimator.torchscript.empty() ? dual.estimator.arch : dual.estimator.torchscript,
            dual.estimator.device, dual.estimator.precision);
    }
  }
  return lines;
}

}  // namespace dualrs::pipeline
