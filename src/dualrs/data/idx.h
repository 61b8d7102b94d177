#pragma once
/// \file
/// Reader for the IDX format of LeCun's MNIST files (gzip'd or raw): magic 0x0000080D where
/// the third byte 0x08 = unsigned byte and D = number of dimensions, big-endian int32 sizes,
/// then the data.

#include <cstdint>
#include <string>
#include <vector>

namespace dualrs::data {

/// An unsigned-byte IDX array: `dims` (e.g. {N, 28, 28}) and row-major data.
struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> data;
};

/// Reads an IDX file of unsigned bytes, gzip'd (".gz", detected by content) or raw.
/// \param expected_rank  required number of dimensions (3 for images, 1 for labels)
/// \throws DataError naming the file: missing, corrupt gzip, wrong magic number, wrong
///         rank, or fewer bytes than the header promises.
IdxArray read_idx(const std::string& path, int expected_rank);

/// Writes an unsigned-byte IDX file (gzip'd when the path ends in ".gz"). Test fixtures.
/// \throws IoError.
void write_idx(const std::string& path, const IdxArray& array);

}  // namespace dualrs::data
