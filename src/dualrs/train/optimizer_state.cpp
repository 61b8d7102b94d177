#include "dualrs/train/optimizer_state.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "dualrs/core/error.h"

namespace dualrs::train {

void save_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& path) {
  const std::string tmp = path + ".tmp";
  // LibTorch opens the file by name and would write through a link planted there: unlink
  // whatever is at the temporary name first (a link, not its target), and publish only a
  // regular file. The name keeps its basename, which LibTorch records inside the archive.
  std::error_code removed;
  std::filesystem::remove(tmp, removed);
  try {
    torch::save(optimizer, tmp);
  } catch (const c10::Error& e) {
    std::remove(tmp.c_str());
    DUALRS_THROW(ModelError, "cannot save optimizer state ", path, ": ", e.what_without_backtrace());
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(std::filesystem::symlink_status(tmp, ec))) {
    DUALRS_THROW(ModelError, "cannot publish optimizer state ", path, ": '", tmp, "' is not a regular file (replaced while writing?)");
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) DUALRS_THROW(ModelError, "cannot publish optimizer state ", path, ": ", ec.message());
}

void load_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& path) {
  try {
    torch::load(optimizer, path);
  } catch (const c10::Error& e) {
    DUALRS_THROW(ModelError, "cannot load optimizer state ", path, ": ", e.what_without_backtrace());
  }
}

double stepped_learning_rate(double lr, double gamma, std::int64_t step_epochs, std::int64_t epoch) {
  return lr * (step_epochs > 0 ? std::pow(gamma, static_cast<double>((epoch - 1) / step_epochs)) : 1.0);
}

void set_adamw_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

at::Generator epoch_generator(std::uint64_t seed, std::int64_t epoch) {
  return at::detail::createCPUGenerator(seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
}

}  // namespace dualrs::train
