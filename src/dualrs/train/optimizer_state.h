#pragma once
/// \file
/// What makes a training run resumable: the optimizer's state saved next to the checkpoint
/// (AdamW moments included), and a learning rate and random stream that depend only on
/// (seed, epoch), so a resumed run repeats an uninterrupted one.

#include <cstdint>
#include <string>

#include <ATen/core/Generator.h>

namespace torch::optim {
class Optimizer;
}

namespace dualrs::train {

/// Writes the optimizer state to `path` atomically (tmp + rename). \throws ModelError naming the path.
void save_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& path);

/// Restores a state written by save_optimizer_state. \throws ModelError naming the path.
void load_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& path);

/// lr · gamma^⌊(epoch − 1)/step_epochs⌋ (step_epochs = 0: lr). \param epoch 1-based.
double stepped_learning_rate(double lr, double gamma, std::int64_t step_epochs, std::int64_t epoch);

/// Sets the learning rate of every parameter group of an AdamW optimizer.
void set_adamw_learning_rate(torch::optim::Optimizer& optimizer, double lr);

/// The CPU generator of one epoch: seeded by seed·1000003 + epoch.
at::Generator epoch_generator(std::uint64_t seed, std::int64_t epoch);

}  // namespace dualrs::train
