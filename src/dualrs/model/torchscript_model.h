#pragma once
/// \file
/// A base classifier loaded from TorchScript. Contract (data_schemas/models.md):
/// `forward(x: float [B, C, H, W] in [0, 1]) -> float [B, K]`.

#include <memory>
#include <string>

#include "dualrs/model/base_model.h"

namespace dualrs::model {

/// Loads `path` with torch::jit::load, on `device`, in eval mode. With `optimize`, the module
/// is also frozen and optimised for inference (GraphModel, docs/method.md §14); a module that
/// cannot be frozen (e.g. its forward mutates an attribute) runs unfrozen, and `warning`
/// (when given) says so, naming the file.
/// \param pointer  the config entry of the model (messages)
/// \param precision  the module is cast to it after loading, before freezing (model/precision.h)
/// \throws ModelError naming the path when the file is missing or not TorchScript. Each
/// logits() call checks the output is `[B, num_classes]` and throws ModelError otherwise.
std::unique_ptr<BaseModel> load_torchscript_model(const std::string& path, std::int64_t num_classes,
                                                  const std::string& device = "cpu", bool optimize = false,
                                                  const std::string& pointer = "/model", std::string* warning = nullptr,
                                                  Precision precision = Precision::kFp32);

}  // namespace dualrs::model
