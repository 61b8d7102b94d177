#include "dualrs/model/base_model.h"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <optional>

#include "dualrs/core/error.h"
#include "dualrs/model/inference_graph.h"
#include "dualrs/model/mnist_cnn.h"
#include "dualrs/model/precision.h"
#include "dualrs/model/resnet.h"
#include "dualrs/model/torchscript_model.h"

namespace dualrs::model {

std::unique_ptr<BaseModel> make_native_model(const std::string& arch, std::int64_t num_classes) {
  if (arch == "mnist_cnn") return make_mnist_cnn(num_classes);
  if (arch == "mnist_mlp") return make_mnist_mlp(num_classes);
  if (arch == "cifar_resnet20") return make_cifar_resnet(20, num_classes);
  if (arch == "cifar_resnet56") return make_cifar_resnet(56, num_classes);
  if (arch == "cifar_resnet110") return make_cifar_resnet(110, num_classes);
  if (arch == "resnet50") return make_resnet50(num_classes);
  throw ConfigError("", "/model/arch", "unknown architecture '" + arch + "'");
}

void BaseModel::to_device(const std::string& device) {
  DUALRS_CHECK(parse_device(device).is_cpu(), ModelError, "model ", describe(),
               " cannot be moved between devices; load it on '", device, "' instead");
}

c10::Device parse_device(const std::string& device) {
  std::optional<c10::Device> parsed;
  try {
    parsed.emplace(device);
  } catch (const c10::Error& e) {
    DUALRS_THROW(ModelError, "bad device '", device, "' (expected cpu, cuda or cuda:N): ", e.what_without_backtrace());
  }
  if (parsed->is_cuda()) {
    DUALRS_CHECK(torch::cuda::is_available(), ModelError, "device '", device,
                 "': this LibTorch has no CUDA or sees no CUDA device (Debian's libtorch is CPU-only; use a CUDA "
                 "build of LibTorch on GPU machines)");
    const auto visible = static_cast<int>(torch::cuda::device_count());
    DUALRS_CHECK(!parsed->has_index() || parsed->index() < visible, ModelError, "device '", device, "': only ", visible,
                 " CUDA device(s) are visible");
  } else {
    DUALRS_CHECK(parsed->is_cpu(), ModelError, "device '", device, "': dualrs runs models on cpu or cuda only");
  }
  return *parsed;
}

std::unique_ptr<BaseModel> load_model(const ModelConfig& config, ModelUse use, const std::string& pointer,
                                      std::string* warning) {
  const bool inference = use == ModelUse::kInference;
  const bool optimize = inference && config.optimize;
  // Training stages train in float32 whatever /…/precision says (docs/method.md §18).
  const Precision precision = inference ? config.precision : Precision::kFp32;
  if (inference && config.allow_tf32) allow_tf32();
  if (!config.torchscript.empty()) {
    return with_precision(load_torchscript_model(config.torchscript, config.num_classes, config.device, optimize, pointer,
                                                 warning, precision),
                          precision, pointer);
  }
  if (config.checkpoint.empty()) throw ConfigError("", pointer + "/checkpoint", "a native model needs a checkpoint to load");
  auto model = make_native_model(config.arch, config.num_classes);
  load_checkpoint(*model, config.checkpoint);
  model->to_device(config.device);
  if (precision != Precision::kFp32) cast_module(*model, precision);
  if (optimize) model = prepare_for_inference(std::move(model), pointer);
  return with_precision(std::move(model), precision, pointer);
}

std::unique_ptr<BaseModel> prepare_for_inference(std::unique_ptr<BaseModel> model, const std::string& pointer) {
  const std::string source = model->script_source();
  if (source.empty() || model->module() == nullptr) return model;
  model->set_training(false);
  NativeGraph native = freeze_native(*model->module(), model->describe(), source, pointer);
  return std::make_unique<GraphModel>(std::move(model), std::move(native.graph), native.device, pointer);
}

void save_module_checkpoint(torch::nn::Module& module, const std::string& what, const std::string& path) {
  const std::string tmp = path + ".tmp";
  // LibTorch opens the file by name and would write through a link planted there: unlink
  // whatever is at the temporary name first (a link, not its target), and publish only a
  // regular file. The name keeps its basename, which LibTorch records inside the archive.
  std::error_code removed;
  std::filesystem::remove(tmp, removed);
  try {
    torch::serialize::OutputArchive archive;
    module.save(archive);
    archive.save_to(tmp);
  } catch (const c10::Error& e) {
    std::remove(tmp.c_str());
    DUALRS_THROW(ModelError, "cannot write checkpoint ", path, " of ", what, ": ", e.what_without_backtrace());
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(std::filesystem::symlink_status(tmp, ec))) {
    DUALRS_THROW(ModelError, "cannot publish checkpoint ", path, ": '", tmp, "' is not a regular file (replaced while writing?)");
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) DUALRS_THROW(ModelError, "cannot publish checkpoint ", path, ": ", ec.message());
}

void load_module_checkpoint(torch::nn::Module& module, const std::string& what, const std::string& path) {
  if (!std::filesystem::exists(path)) DUALRS_THROW(ModelError, "checkpoint not found: ", path);
  // Module::load replaces tensors wholesale, whatever their shape: check shapes ourselves so
  // a checkpoint of another architecture or class count is refused, not silently adopted.
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> expected;
  for (const auto& item : module.named_parameters()) expected.emplace_back(item.key(), item.value().sizes().vec());
  for (const auto& item : module.named_buffers()) expected.emplace_back(item.key(), item.value().sizes().vec());
  // Where the module lives now; Module::load adopts the archive's tensors, which are read onto
  // the CPU (a GPU-written checkpoint must load where there is no GPU).
  std::optional<c10::Device> home;
  for (const auto& p : module.parameters()) {
    home = p.device();
    break;
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path, c10::Device(c10::kCPU));
    module.load(archive);
    if (home && !home->is_cpu()) module.to(*home);
  } catch (const c10::Error& e) {
    DUALRS_THROW(ModelError, "cannot load checkpoint ", path, " into ", what, ": ", e.what_without_backtrace());
  }
  auto params = module.named_parameters();
  auto buffers = module.named_buffers();
  for (const auto& [name, sizes] : expected) {
    const torch::Tensor* t = params.find(name);
    if (t == nullptr) t = buffers.find(name);
    if (t == nullptr || t->sizes().vec() != sizes) {
      DUALRS_THROW(ModelError, "checkpoint ", path, " does not fit ", what, ": tensor '", name, "' has shape ",
                   t == nullptr ? std::string("(missing)") : c10::str(t->sizes()), ", expected ", c10::str(c10::IntArrayRef(sizes)));
    }
  }
}

void save_checkpoint(BaseModel& model, const std::string& path) {
  torch::nn::Module* module = model.module();
  DUALRS_CHECK(module != nullptr, ModelError, "model ", model.describe(), " has no native weights to save");
  save_module_checkpoint(*module, model.describe(), path);
}

void load_checkpoint(BaseModel& model, const std::string& path) {
  torch::nn::Module* module = model.module();
  DUALRS_CHECK(module != nullptr, ModelError, "model ", model.describe(), " has no native weights to load");
  load_module_checkpoint(*module, model.describe(), path);
  model.set_training(false);
}

std::int64_t copy_matching_weights(BaseModel& to, BaseModel& from) {
  torch::nn::Module* dst = to.module();
  torch::nn::Module* src = from.module();
  DUALRS_CHECK(dst != nullptr && src != nullptr, ModelError, "cannot copy weights from ", from.describe(), " to ",
               to.describe(), ": both need native weights");
  torch::NoGradGuard no_grad;
  std::int64_t copied = 0;
  auto copy_all = [&](torch::OrderedDict<std::string, torch::Tensor> into, torch::OrderedDict<std::string, torch::Tensor> source) {
    for (auto& item : into) {
      const torch::Tensor* t = source.find(item.key());
      if (t != nullptr && t->sizes() == item.value().sizes()) {
        item.value().copy_(*t);
        ++copied;
      }
    }
  };
  copy_all(dst->named_parameters(), src->named_parameters());
  copy_all(dst->named_buffers(), src->named_buffers());
  DUALRS_CHECK(copied > 0, ModelError, "no parameter of ", from.describe(), " matches ", to.describe(),
               " by name and shape: not the same architecture");
  return copied;
}

}  // namespace dualrs::model
