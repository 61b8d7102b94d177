#pragma once
/// \file
/// CIFAR-10, binary version (Krizhevsky 2009; cifar-10-binary.tar.gz unpacks to
/// `cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin` (train) and
/// `test_batch.bin` (test), each a sequence of 3073-byte records: one label byte (0-9), then
/// 1024 red, 1024 green and 1024 blue bytes, each plane 32 × 32 row-major. Layout and example
/// numbering: `data_schemas/datasets.md`.

#include <cstdint>
#include <string>
#include <vector>

#include "dualrs/data/dataset.h"

namespace dualrs::data {

/// Bytes per CIFAR-10 record: label + 3 × 32 × 32 pixels.
inline constexpr std::int64_t kCifar10RecordBytes = 1 + 3 * 32 * 32;

/// The batch files under `root` in example order: test_batch.bin, then data_batch_1..5.bin.
std::vector<std::string> cifar10_files(const std::string& root);

/// Built-in splits from the files' sizes (nothing is read): "test" = [0, records of
/// test_batch.bin), "train" = the five data batches after it.
/// \throws DataError naming a missing file or one that is not a whole number of records.
SplitRanges cifar10_split_ranges(const std::string& root);

/// Loads all six batch files into memory (60,000 × 3 × 32 × 32 bytes for the real data):
/// test examples first (index = position in test_batch.bin, as in Cohen et al.'s logs), then
/// train. 10 classes.
/// \throws DataError naming the file and record: missing file, size not a whole number of
///         3073-byte records (truncated record), label byte > 9.
ImageDataset load_cifar10_bin(const std::string& root, std::string name = "cifar10");

}  // namespace dualrs::data
