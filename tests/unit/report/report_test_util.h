#pragma once
/// \file
/// Helpers shared by the report unit tests: hand-made certification records.

#include <cstdint>

#include "dualrs/core/records.h"

namespace dualrs::report::testing {

/// A certify record with the fields the tables read: idx, label, prediction (kAbstain = -1),
/// radius (ℓ2, [0,1]-pixel units).
inline CertifyRecord rec(std::int64_t idx, std::int64_t label, std::int64_t pred, double radius) {
  CertifyRecord r;
  r.idx = idx;
  r.label = label;
  r.prediction = pred;
  r.radius = radius;
  return r;
}

}  // namespace dualrs::report::testing
