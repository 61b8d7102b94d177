#include "dualrs/data/idx.h"

#include <zlib.h>

#include <cstring>
#include <memory>

#include "dualrs/core/error.h"

namespace dualrs::data {
namespace {
struct GzCloser {
  void operator()(gzFile_s* f) const {
    if (f != nullptr) gzclose(f);
  }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

std::vector<std::uint8_t> read_all(const std::string& path) {
  // zlib reads both gzip and plain files transparently.
  GzFile file(gzopen(path.c_str(), "rb"));
  if (!file) DUALRS_THROW(DataError, "cannot open dataset file ", path, ": ", std::strerror(errno));
  std::vector<std::uint8_t> out;
  std::uint8_t buffer[1 << 16];
  while (true) {
    const int got = gzread(file.get(), buffer, sizeof buffer);
    if (got < 0) {
      int code = 0;
      const char* msg = gzerror(file.get(), &code);
      DUALRS_THROW(DataError, "corrupt or unreadable dataset file ", path, ": ", msg);
    }
    if (got == 0) break;
    out.insert(out.end(), buffer, buffer + got);
  }
  int code = 0;
  const char* msg = gzerror(file.get(), &code);
  if (code != Z_OK && code != Z_STREAM_END) DUALRS_THROW(DataError, "corrupt dataset file ", path, ": ", msg);
  return out;
}

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}
}  // namespace

IdxArray read_idx(const std::string& path, int expected_rank) {
  const std::vector<std::uint8_t> bytes = read_all(path);
  if (bytes.size() < 4) DUALRS_THROW(DataError, path, ": not an IDX file (", bytes.size(), " bytes)");
  const std::uint32_t magic = be32(bytes.data());
  const int rank = static_cast<int>(magic & 0xFF);
  if ((magic & 0xFFFFFF00u) != 0x00000800u || rank != expected_rank) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08X", magic);
    DUALRS_THROW(DataError, path, ": wrong IDX magic number ", hex, " (expected 0x0000080", expected_rank,
                 ": unsigned bytes, ", expected_rank, " dimensions)");
  }
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(rank);
  if (bytes.size() < header) DUALRS_THROW(DataError, path, ": truncated IDX header");
  IdxArray array;
  std::size_t total = 1;
  for (int d = 0; d < rank; ++d) {
    const std::uint32_t size = be32(bytes.data() + 4 + 4 * d);
    array.dims.push_back(size);
    total *= size;
  }
  if (bytes.size() != header + total) {
    DUALRS_THROW(DataError, path, ": IDX header promises ", total, " values but the file holds ", bytes.size() - header,
                 " (truncated or corrupt)");
  }
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

void write_idx(const std::string& path, const IdxArray& array) {
  std::vector<std::uint8_t> bytes;
  const std::uint32_t magic = 0x00000800u | static_cast<std::uint32_t>(array.dims.size());
  auto put32 = [&](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<std::uint8_t>(v >> s));
  };
  put32(magic);
  for (auto d : array.dims) put32(static_cast<std::uint32_t>(d));
  bytes.insert(bytes.end(), array.data.begin(), array.data.end());
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  GzFile file(gzopen(path.c_str(), gz ? "wb" : "wbT"));
  if (!file) DUALRS_THROW(IoError, "cannot write ", path);
  if (gzwrite(file.get(), bytes.data(), static_cast<unsigned>(bytes.size())) != static_cast<int>(bytes.size())) {
    DUALRS_THROW(IoError, "cannot write ", path);
  }
}

}  // namespace dualrs::data
