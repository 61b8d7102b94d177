#pragma once
/// \file
/// JPEG decoding with libjpeg-turbo's TurboJPEG API, matching what PIL's
/// `Image.open(path).convert("RGB")` gives (the loader of torchvision's ImageFolder, which
/// Cohen et al. and Carlini et al. use for ImageNet): the same IDCT (ISLOW) and chroma
/// upsampling ("fancy"); greyscale replicated into R, G and B; CMYK and YCCK JPEGs read
/// with Adobe's inverted-CMYK convention and converted as PIL 9 does
/// (R = K' − K'·C'/255 with K' = 255 − K, rounded). EXIF orientation is ignored, as PIL and
/// torchvision ignore it. Only this file's .cpp includes <turbojpeg.h>.

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace dualrs::data {

/// Decodes a JPEG held in memory to RGB bytes.
/// \param name  the file the bytes came from, used in messages.
/// \returns uint8 `[3, H, W]`.
/// \throws DataError naming `name`: not a JPEG (with a hint when it is a PNG, as one
///         ILSVRC-2012 training file is), corrupt, truncated ("Premature end of JPEG file"),
///         or an unsupported colour space. Other libjpeg warnings (e.g. extraneous bytes
///         before a marker) are accepted, as PIL accepts them.
at::Tensor decode_jpeg(const std::vector<std::uint8_t>& bytes, const std::string& name);

/// Reads and decodes a JPEG file: uint8 `[3, H, W]` RGB.
/// \throws DataError naming the file (missing, unreadable, or as decode_jpeg).
at::Tensor read_jpeg_file(const std::string& path);

}  // namespace dualrs::data
