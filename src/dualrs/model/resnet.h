#pragma once
/// \file
/// Native residual networks (He et al. 2016) for the CIFAR-10 and ImageNet recipes of the
/// Dual RS paper: the base classifiers and the σ estimators. Both take [0, 1] pixels like every
/// BaseModel; the dataset's mean/std normalisation is their first layer, after the noise.

#include <cstdint>
#include <memory>

#include "dualrs/model/base_model.h"

namespace dualrs::model {

/// CIFAR ResNet (He et al. 2016 §4.2, in the form of Cohen et al.'s `archs/cifar_resnet.py`):
/// 3×3 conv to 16 channels, three stages of n basic blocks with 16/32/64 channels (stride 2 at
/// the start of stages 2 and 3), global average pooling, linear 64→K. Where a block changes
/// the shape the shortcut is a 1×1 conv + batch-norm projection (option B, as in Cohen et
/// al.), not option A's zero padding. Normalises with the CIFAR-10 mean (0.4914, 0.4822,
/// 0.4465) and std (0.2470, 0.2435, 0.2616) first. Input float `[B, 3, 32, 32]` in [0, 1],
/// output `[B, K]` logits; logits() throws ModelError on any other input shape.
/// \param depth        6n + 2; the registered architectures use 20, 56 and 110.
/// \param num_classes  K (10 for CIFAR-10; |Σ| for a σ estimator).
/// \throws ModelError when depth is not 6n + 2 with n ≥ 1, or num_classes < 1.
std::unique_ptr<BaseModel> make_cifar_resnet(int depth, std::int64_t num_classes);

/// ResNet-50 in torchvision's layout (v1.5: bottleneck stages [3, 4, 6, 3], stride on the
/// 3×3 conv, 1×1 conv + batch-norm projection shortcuts), after ImageNet mean (0.485, 0.456,
/// 0.406) / std (0.229, 0.224, 0.225) normalisation. Input float `[B, 3, H, W]` in [0, 1]
/// with H, W ≥ 32 (224 typical; global average pooling makes any size work), output
/// `[B, K]` logits; logits() throws ModelError on any other input shape.
/// \param num_classes  K (1000 for ImageNet; |Σ| for a σ estimator).
/// \throws ModelError when num_classes < 1.
std::unique_ptr<BaseModel> make_resnet50(std::int64_t num_classes);

}  // namespace dualrs::model
