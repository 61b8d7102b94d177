#include "dualrs/core/shards.h"

#include <algorithm>

#include "dualrs/core/error.h"

namespace dualrs {
inline namespace core {

std::vector<Shard> make_shards(std::int64_t count, std::int64_t shard_size) {
  if (shard_size < 1) throw ConfigError("", "shard_size", "must be >= 1, got " + std::to_string(shard_size));
  if (count < 0) DUALRS_THROW(DataError, "a selection cannot have ", count, " examples");
  // An empty selection still has one (empty) shard, so that it yields an empty output file.
  if (count == 0) return {{0, 0, 0}};
  std::vector<Shard> shards;
  for (std::int64_t begin = 0, i = 0; begin < count; begin += shard_size, ++i) {
    shards.push_back({i, begin, std::min(count, begin + shard_size)});
  }
  return shards;
}

std::string ShardSubset::text() const { return std::to_string(index) + "/" + std::to_string(count); }

ShardSubset parse_shard_subset(const std::string& text) {
  const auto bad = [&] {
    return ConfigError("command line", "--shard-subset", "expected I/N with 0 <= I < N (e.g. 3/16), got '" + text + "'");
  };
  const std::size_t slash = text.find('/');
  if (slash == std::string::npos) throw bad();
  ShardSubset subset;
  try {
    std::size_t used_i = 0, used_n = 0;
    const std::string i = text.substr(0, slash), n = text.substr(slash + 1);
    subset.index = std::stoll(i, &used_i);
    subset.count = std::stoll(n, &used_n);
    if (used_i != i.size() || used_n != n.size()) throw bad();
  } catch (const std::logic_error&) {
    throw bad();
  }
  if (subset.count < 1 || subset.index < 0 || subset.index >= subset.count) throw bad();
  return subset;
}

std::string describe_shard_indices(std::vector<std::int64_t> indices) {
  std::sort(indices.begin(), indices.end());
  std::string out;
  for (std::size_t i = 0; i < indices.size();) {
    std::size_t j = i;
    while (j + 1 < indices.size() && indices[j + 1] == indices[j] + 1) ++j;
    out += (out.empty() ? "" : ", ") + std::to_string(indices[i]);
    if (j > i) out += "-" + std::to_string(indices[j]);
    i = j + 1;
  }
  return out;
}

}  // namespace core
}  // namespace dualrs
