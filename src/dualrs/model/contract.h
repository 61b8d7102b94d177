#pragma once
/// \file
/// The TorchScript model contracts (data_schemas/models.md) and a check of a model file
/// against one of them on a dummy batch (`dualrs check-model`).
///
/// | name             | forward                         | input                         | output                       |
/// |------------------|---------------------------------|-------------------------------|------------------------------|
/// | `classifier`     | `forward(x)`                    | float32 `[B,C,H,W]` in [0, 1]  | float `[B, K]` logits        |
/// | `classifier-pm1` | `forward(x)`                    | float32 `[B,C,H,W]` in [−1, 1] | float `[B, K]` logits        |
/// | `epsilon`        | `forward(x_t, t)`               | float32 `[B,C,H,W]` in [−1, 1], t float32 `[B]` | float `[B,C,H,W]` or `[B,2C,H,W]` |

#include <cstdint>
#include <string>
#include <vector>

namespace dualrs::model {

enum class ModelContract { kClassifier, kClassifierPm1, kEpsilon };

/// "classifier", "classifier-pm1", "epsilon". \throws ConfigError naming `pointer` otherwise.
ModelContract parse_model_contract(const std::string& name, const std::string& pointer = "--contract");
std::string to_string(ModelContract contract);

/// What a contract check saw.
struct ContractReport {
  std::string path;
  ModelContract contract = ModelContract::kClassifier;
  std::vector<std::int64_t> input_shape;   ///< [B, C, H, W] of the dummy batch
  std::vector<std::int64_t> output_shape;
  std::string output_dtype;                ///< e.g. "Float"
  std::int64_t num_classes = 0;            ///< classifiers: K
  bool learned_sigma = false;              ///< ε-models: output has 2C channels
  double max_row_difference = 0.0;         ///< |row 0 alone − row 0 in the batch|, max over outputs
};

/// Loads `path` as TorchScript and runs the contract on a dummy batch of B = 3 deterministic
/// inputs spanning the contract's input range (ε-models: timesteps {0, 250, 999}): the
/// output shape, dtype and finiteness, and that row 0 gives the same output alone as in the
/// batch (a module left in training mode, or one that mixes rows, fails).
/// \param chw          the input's [C, H, W].
/// \param num_classes  K for classifiers (0: accept any K and report it); ignored for ε-models.
/// \throws ModelError naming the file and what was expected on any violation.
ContractReport check_model_contract(const std::string& path, ModelContract contract, const std::vector<std::int64_t>& chw,
                                    std::int64_t num_classes, const std::string& device = "cpu");

}  // namespace dualrs::model
