#include "dualrs/model/epsilon_model.h"

#include <torch/torch.h>

#include "dualrs/core/error.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/inference_graph.h"
#include "dualrs/model/mnist_unet.h"
#include "dualrs/model/precision.h"

namespace dualrs::model {

void EpsilonModel::to_device(const std::string& device) {
  DUALRS_CHECK(parse_device(device).is_cpu(), ModelError, "epsilon-model ", describe(),
               " cannot be moved between devices; load it on '", device, "' instead");
}

std::unique_ptr<EpsilonModel> make_native_epsilon_model(const std::string& arch) {
  if (arch == "mnist_unet") return make_mnist_unet();
  throw ConfigError("", "/denoiser/arch", "unknown epsilon-model architecture '" + arch + "' (mnist_unet)");
}

std::unique_ptr<EpsilonModel> load_epsilon_model(const DenoiserConfig& config, std::string* warning) {
  if (!config.torchscript.empty()) {
    return with_precision(
        load_torchscript_epsilon_model(config.torchscript, config.device, config.optimize, warning, config.precision),
        config.precision, "/denoiser");
  }
  if (config.checkpoint.empty()) {
    throw ConfigError("", "/denoiser/checkpoint", "a native epsilon-model needs a checkpoint (written by train-denoiser)");
  }
  auto model = make_native_epsilon_model(config.arch);
  load_module_checkpoint(*model->module(), model->describe(), config.checkpoint);
  model->to_device(config.device);
  model->set_training(false);
  if (config.precision != Precision::kFp32) model->module()->to(scalar_type_of(config.precision));
  if (config.optimize) model = prepare_epsilon_for_inference(std::move(model));
  return with_precision(std::move(model), config.precision, "/denoiser");
}

}  // namespace dualrs::model
