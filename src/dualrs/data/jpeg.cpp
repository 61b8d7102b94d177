#include "dualrs/data/jpeg.h"

#include <turbojpeg.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include "dualrs/core/error.h"

namespace dualrs::data {
namespace {

struct TjDestroyer {
  void operator()(void* handle) const {
    if (handle != nullptr) tjDestroy(handle);
  }
};
using TjHandle = std::unique_ptr<void, TjDestroyer>;

// PIL's MULDIV255: a·b/255 rounded, exactly as Pillow computes it (Convert.c).
inline int muldiv255(int a, int b) {
  const int tmp = a * b + 128;
  return ((tmp >> 8) + tmp) >> 8;
}

// Adobe-convention (inverted) CMYK bytes as libjpeg returns them -> RGB, as Pillow 9 does:
// it reads them with rawmode "CMYK;I" (C = 255 − stored) and converts with
// R = clip(K' − K'·C/255), K' = 255 − K.
void inverted_cmyk_to_rgb(const std::uint8_t* cmyk, std::uint8_t* rgb, std::int64_t pixels, std::int64_t plane) {
  for (std::int64_t p = 0; p < pixels; ++p) {
    const std::uint8_t* in = cmyk + 4 * p;
    const int nk = in[3];  // 255 − K with K = 255 − stored
    for (int c = 0; c < 3; ++c) {
      const int value = nk - muldiv255(255 - in[c], nk);
      rgb[c * plane + p] = static_cast<std::uint8_t>(value < 0 ? 0 : (value > 255 ? 255 : value));
    }
  }
}

bool looks_like_png(const std::vector<std::uint8_t>& bytes) {
  static const std::uint8_t kPng[] = {0x89, 'P', 'N', 'G'};
  return bytes.size() >= 4 && std::memcmp(bytes.data(), kPng, 4) == 0;
}

}  // namespace

at::Tensor decode_jpeg(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  if (looks_like_png(bytes)) {
    DUALRS_THROW(DataError, name, ": a PNG file with a JPEG name; convert it to JPEG once (e.g. with PIL: "
                 "Image.open(p).convert('RGB').save(p, 'JPEG', quality=95))");
  }
  TjHandle handle(tjInitDecompress());
  if (!handle) DUALRS_THROW(DataError, name, ": cannot start the JPEG decoder: ", tjGetErrorStr2(nullptr));
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  const auto size = static_cast<unsigned long>(bytes.size());
  if (tjDecompressHeader3(handle.get(), bytes.data(), size, &width, &height, &subsampling, &colorspace) != 0) {
    DUALRS_THROW(DataError, name, ": not a readable JPEG file (", tjGetErrorStr2(handle.get()), ")");
  }
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  const int channels = cmyk ? 4 : 3;
  const std::int64_t pixels = std::int64_t{width} * height;
  std::vector<std::uint8_t> interleaved(static_cast<std::size_t>(pixels * channels));
  const int status = tjDecompress2(handle.get(), bytes.data(), size, interleaved.data(), width, 0, height,
                                   cmyk ? TJPF_CMYK : TJPF_RGB, 0);
  if (status != 0) {
    const std::string message = tjGetErrorStr2(handle.get());
    // A warning leaves a usable image, except a truncated file, which PIL refuses too
    // ("image file is truncated"): libjpeg pads it with grey.
    if (tjGetErrorCode(handle.get()) != TJERR_WARNING || message.find("Premature end") != std::string::npos) {
      DUALRS_THROW(DataError, name, ": corrupt or truncated JPEG (", message, ")");
    }
  }
  at::Tensor out = torch::empty({3, height, width}, torch::kUInt8);
  std::uint8_t* planes = out.data_ptr<std::uint8_t>();
  if (cmyk) {
    inverted_cmyk_to_rgb(interleaved.data(), planes, pixels, pixels);
  } else {
    for (std::int64_t p = 0; p < pixels; ++p) {
      for (int c = 0; c < 3; ++c) planes[c * pixels + p] = interleaved[static_cast<std::size_t>(3 * p + c)];
    }
  }
  return out;
}

at::Tensor read_jpeg_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) DUALRS_THROW(DataError, "cannot open image file ", path, ": ", std::strerror(errno));
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) DUALRS_THROW(DataError, "cannot read image file ", path);
  return decode_jpeg(bytes, path);
}

}  // namespace dualrs::data
