#pragma once
/// \file
/// Which noise the smoothing stages add (docs/method.md §15).

namespace dualrs {
inline namespace core {

/// The noise distribution of certify, predict, label and estimate-sigma.
enum class NoiseKind {
  kGaussian,  ///< float32 x + σz, z ~ N(0, I) (Cohen et al.; the default, paper parity)
  kGrid,      ///< the Gaussian rounded to the 1/255 pixel grid, added in integers (Voráček & Hein, ICLR 2023)
};

}  // namespace core
}  // namespace dualrs
