#pragma once
/// \file
/// Reduced-precision inference (docs/method.md §18): a model whose weights were cast to
/// bfloat16 or float16 receives its inputs in that type and returns float32 logits (or ε̂).
/// Certificates stay sound at any precision: randomized smoothing certifies the smoothed
/// version of whatever function the base classifier computes, and a bf16 network is such a
/// function, deterministic for fixed inputs. What changes is which function is certified, so
/// every output records the precision (the resolved config's /…/precision when not fp32).

#include <memory>
#include <string>

#include <c10/core/ScalarType.h>

#include "dualrs/core/config.h"
#include "dualrs/model/base_model.h"
#include "dualrs/model/epsilon_model.h"

namespace dualrs::model {

/// The self-check tolerance of a frozen graph against its eager form when both run in bf16 or
/// fp16 (the float32 one is kInferenceTolerance): bf16 keeps 8 significant bits, and the
/// two forms round in different places.
inline constexpr double kReducedInferenceTolerance = 5e-2;

/// fp32 → Float, bf16 → BFloat16, fp16 → Half.
c10::ScalarType scalar_type_of(Precision precision);

/// Casts a native model's parameters and buffers (in place) to `precision`.
/// \throws ModelError when the model has no native module (TorchScript: cast when loading).
void cast_module(BaseModel& model, Precision precision);

/// `model` (already cast, see cast_module / load_torchscript_model) behind the cast of its
/// inputs to `precision` and of its logits back to float32: logits(x) takes float `[B, C, H,
/// W]` and returns float32 `[B, K]`. fp32 returns `model` unchanged.
/// \throws (from logits) ModelError "cannot run in bf16 (POINTER/precision): …" when the first
/// forward fails, naming the model; later failures pass through unchanged.
std::unique_ptr<BaseModel> with_precision(std::unique_ptr<BaseModel> model, Precision precision,
                                          const std::string& pointer);

/// The same for an ε-model: epsilon(x_t float `[B, C, H, W]`, t float32 `[B]`) returns
/// float32 `[B, C, H, W]`; the timesteps stay float32 (native ε-models cast their timestep
/// embedding to their weights' type). \throws as the classifier form, from epsilon().
std::unique_ptr<EpsilonModel> with_precision(std::unique_ptr<EpsilonModel> model, Precision precision,
                                             const std::string& pointer);

/// Allows TF32 matmuls and cuDNN convolutions for this process (CUDA devices; a no-op for
/// CPU work). Process-wide in LibTorch: any model that asks for it turns it on.
void allow_tf32();

}  // namespace dualrs::model
