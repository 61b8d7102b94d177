#include "dualrs/model/epsilon_model.h"

#include "dualrs/core/error.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/inference_graph.h"
#include "dualrs/model/mnist_unet.h"

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
    return load_torchscript_epsilon_model(config.torchscript, config.device, config.optimize, warning);
  }
  if (config.checkpoint.empty()) {
    throw ConfigError("", "/denoiser/checkpoint", "a native epsilon-model needs a checkpoint (written by train-denoiser)");
  }
  auto model = make_native_epsilon_model(config.arch);
  load_module_checkpoint(*model->module(), model->describe(), config.checkpoint);
  model->to_device(config.device);
  model->set_training(false);
  return config.optimize ? prepare_epsilon_for_inference(std::move(model)) : std::move(model);
}

}  // namespace dualrs::model
