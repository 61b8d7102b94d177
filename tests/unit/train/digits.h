#pragma once
// The embedded MNIST digits for the train-layer tests, loaded once per test binary.

#include <string>

#include "dualrs/data/dataset.h"

namespace dualrs::train::test_data {

inline std::string mnist(const std::string& name) { return std::string(DUALRS_SOURCE_DIR) + "/data/mnist/" + name; }

inline const data::ImageDataset& digits() {
  static const data::ImageDataset ds = data::load_mnist_idx(mnist("images-idx3-ubyte.gz"), mnist("labels-idx1-ubyte.gz"));
  return ds;
}

}  // namespace dualrs::train::test_data
