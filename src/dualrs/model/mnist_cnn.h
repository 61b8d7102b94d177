#pragma once
/// \file
/// A small CNN for 28×28 grey digits: conv(1→16, 3×3) → ReLU → max-pool → conv(16→32, 3×3)
/// → ReLU → max-pool → linear(1568→128) → ReLU → linear(128→K). The MNIST mean/std
/// normalisation is its first layer, so it takes [0, 1] pixels like every BaseModel.

#include <memory>

#include "dualrs/model/base_model.h"

namespace dualrs::model {

/// \param num_classes K (10 for digits; |Σ| for a σ estimator).
std::unique_ptr<BaseModel> make_mnist_cnn(std::int64_t num_classes);

/// "mnist_mlp": a fully connected network on MNIST digits, [B, 1, 28, 28] in [0, 1] →
/// [B, num_classes] logits (784 → 256 → 128 → K, ReLU; the MNIST normalisation inside), the
/// second estimator architecture of the ablations (DualRS App. E.5; docs/method.md §10.3).
/// \throws ModelError (from logits) on another input shape.
std::unique_ptr<BaseModel> make_mnist_mlp(std::int64_t num_classes);

}  // namespace dualrs::model
