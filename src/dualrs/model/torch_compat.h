#pragma once
/// \file
/// The places where LibTorch 1.13 (Debian 12) and LibTorch 2.x (Debian 13's 2.6, the clusters'
/// CUDA builds) behave differently in what dualrs relies on, each behind one helper
/// (docs/cluster.md §1). For use inside src/dualrs/model: it pulls in <torch/script.h>.

#include <torch/script.h>

#include <vector>

namespace dualrs::model {

/// `graph.forward(inputs)` of a frozen, optimised graph, as a tensor. LibTorch 2.x routes the
/// oneDNN (MKLDNN) tensors of an optimize_for_inference graph through the autograd kernels
/// unless InferenceMode is on, and some of them (max_pool2d) then stop on an internal assert;
/// 1.13 ran them in any mode. So the graph always runs in InferenceMode, and its output is
/// cloned into an ordinary tensor when the caller is not in InferenceMode, so that callers
/// may keep using it as before (in place, or as a constant in autograd).
/// \throws whatever the graph throws (c10::Error, torch::jit::JITException).
at::Tensor forward_frozen(torch::jit::Module& graph, std::vector<c10::IValue> inputs);

}  // namespace dualrs::model
