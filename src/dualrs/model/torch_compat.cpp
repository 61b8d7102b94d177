#include "dualrs/model/torch_compat.h"

#include <torch/torch.h>

namespace dualrs::model {

at::Tensor forward_frozen(torch::jit::Module& graph, std::vector<c10::IValue> inputs) {
  const bool caller_in_inference_mode = c10::InferenceMode::is_enabled();
  at::Tensor out;
  {
    c10::InferenceMode inference;
    out = graph.forward(std::move(inputs)).toTensor();
  }
  return caller_in_inference_mode ? out : out.clone();
}

}  // namespace dualrs::model
