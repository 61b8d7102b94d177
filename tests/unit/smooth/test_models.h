#pragma once
// Base classifiers with known votes, shared by the smooth tests.

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dualrs/core/stats.h"
#include "dualrs/model/base_model.h"

namespace dualrs::smooth {

// The rounding-safe radius of a Clopper–Pearson bound p (docs/method.md §15): p and
// σ·Φ⁻¹(p) each lowered by stats::kRoundingUlps.
inline double safe_radius(double sigma, double p) {
  return stats::toward_zero(sigma * stats::norm_ppf(stats::toward_zero(p)));
}

// Class 1 when pixel 0 > 0.5 else class 0 (of k classes): a coin flip for x = 0.5. Row by
// row, so its votes do not depend on which rows share a forward. Records the row count of
// every forward in `rows`.
class CoinModel : public model::BaseModel {
 public:
  explicit CoinModel(std::int64_t k) : k_(k) {}
  at::Tensor logits(const at::Tensor& x) override {
    rows.push_back(x.size(0));
    auto out = torch::zeros({x.size(0), k_});
    const auto v = x.flatten(1).select(1, 0) - 0.5f;
    out.select(1, 0).copy_(-v);
    out.select(1, 1).copy_(v);
    return out;
  }
  std::int64_t num_classes() const override { return k_; }
  std::string describe() const override { return "coin"; }
  void set_training(bool) override {}
  std::vector<std::int64_t> rows;

 private:
  std::int64_t k_;
};

}  // namespace dualrs::smooth
