#include "dualrs/io/shard_files.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <regex>
#include <set>
#include <stdexcept>
#include <utility>

#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/hdf5_file.h"
#include "dualrs/io/label_files.h"
#include "dualrs/io/result_files.h"

namespace dualrs::io {
namespace fs = std::filesystem;

namespace {

constexpr const char* kLabels = "dualrs.labels";
constexpr const char* kSigmaEstimates = "dualrs.sigma_estimates";
constexpr const char* kCertify = "dualrs.certify";
constexpr const char* kPredict = "dualrs.predict";
/// Root attribute of a merged file: shard_set_sha256 of the shard files it was made from.
constexpr const char* kShardSetAttr = "merged_shards_sha256";

/// Shard files in `folder`, by shard index (from the name).
std::map<std::int64_t, std::string> list_shard_files(const std::string& folder) {
  static const std::regex name(R"(shard-([0-9]+)\.h5)");
  std::map<std::int64_t, std::string> files;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return files;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    std::smatch m;
    const std::string file = entry.path().filename().string();
    if (entry.is_regular_file() && std::regex_match(file, m, name)) files[std::stoll(m[1].str())] = entry.path().string();
  }
  if (ec) DUALRS_THROW(IoError, "cannot list folder '", folder, "': ", ec.message());
  return files;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

std::string short_hash(const std::string& sha) { return sha.substr(0, 12); }

/// The row-major columns of a table (example axis first) that are appended and reordered
/// together: (column, values per row).
struct Columns {
  std::vector<std::pair<std::vector<std::int64_t>*, std::size_t>> ints;
  std::vector<std::pair<std::vector<double>*, std::size_t>> floats;

  /// Appends the rows of `other`, which has the same columns.
  void append(const Columns& other) {
    for (std::size_t c = 0; c < ints.size(); ++c) concat(*ints[c].first, *other.ints[c].first);
    for (std::size_t c = 0; c < floats.size(); ++c) concat(*floats[c].first, *other.floats[c].first);
  }

  /// Reorders the rows so that `idx` (one of the int columns) ascends.
  void sort_by(const std::vector<std::int64_t>& idx) {
    std::vector<std::size_t> order(idx.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return idx[a] < idx[b]; });
    for (auto& [column, width] : ints) permute(*column, order, width);
    for (auto& [column, width] : floats) permute(*column, order, width);
  }

 private:
  template <typename T>
  static void concat(std::vector<T>& to, const std::vector<T>& from) {
    to.insert(to.end(), from.begin(), from.end());
  }
  template <typename T>
  static void permute(std::vector<T>& v, const std::vector<std::size_t>& order, std::size_t width) {
    std::vector<T> out;
    out.reserve(v.size());
    for (std::size_t i : order) out.insert(out.end(), v.begin() + i * width, v.begin() + (i + 1) * width);
    v = std::move(out);
  }
};

}  // namespace

Provenance shard_provenance(const Provenance& base, const ShardMeta& meta) {
  Provenance p = base;
  p.extra["shard_index"] = meta.shard.index;
  p.extra["shard_begin"] = meta.shard.begin;
  p.extra["shard_end"] = meta.shard.end;
  p.extra["shard_size"] = meta.shard_size;
  p.extra["shard_count"] = meta.shard_count;
  p.extra["selection_count"] = meta.selection_count;
  p.extra["selection_sha256"] = meta.selection_sha256;
  p.extra["shard_rank"] = meta.rank;
  p.completion_mark = true;
  return p;
}

std::string selection_sha256(std::vector<std::int64_t> idx) {
  std::sort(idx.begin(), idx.end());
  std::string bytes;
  bytes.reserve(idx.size() * 8);
  for (std::int64_t v : idx) {
    const auto u = static_cast<std::uint64_t>(v);
    for (int b = 0; b < 8; ++b) bytes += static_cast<char>((u >> (8 * b)) & 0xff);
  }
  return sha256_hex(bytes);
}

std::string shards_folder(const std::string& out_dir) { return (fs::path(out_dir) / "shards").string(); }

std::string shard_path(const std::string& out_dir, std::int64_t index) {
  char name[48];
  std::snprintf(name, sizeof name, "shard-%05lld.h5", static_cast<long long>(index));
  return (fs::path(shards_folder(out_dir)) / name).string();
}

ShardFileInfo inspect_shard(const std::string& path) {
  ShardFileInfo info;
  info.path = path;
  Hdf5File f(path, FileMode::kReadOnly);
  const std::string root = "/";
  if (!f.has_attr(root, "shard_complete") || f.attr_int64(root, "shard_complete") != 1) {
    DUALRS_THROW(IoError, "shard file '", path, "' has no completion mark (root attribute shard_complete = 1)");
  }
  info.schema = f.attr_string(root, "schema");
  info.provenance = read_provenance_attributes(f);
  ShardMeta& m = info.meta;
  m.shard.index = f.attr_int64(root, "shard_index");
  m.shard.begin = f.attr_int64(root, "shard_begin");
  m.shard.end = f.attr_int64(root, "shard_end");
  m.shard_size = f.attr_int64(root, "shard_size");
  m.shard_count = f.attr_int64(root, "shard_count");
  m.selection_count = f.attr_int64(root, "selection_count");
  m.selection_sha256 = f.attr_string(root, "selection_sha256");
  m.rank = f.attr_int64(root, "shard_rank");
  if (fs::path(path).filename().string() != fs::path(shard_path("", m.shard.index)).filename().string()) {
    DUALRS_THROW(IoError, "shard file '", path, "' holds shard ", m.shard.index, " (renamed?)");
  }
  // Reading every dataset in full verifies every chunk's fletcher32 checksum.
  std::int64_t rows = -1;
  for (const std::string& name : f.list(root)) {
    const std::string type = f.dtype(name);
    const std::size_t values = type.rfind("float", 0) == 0 ? f.read_float64(name).size() : f.read_int64(name).size();
    (void)values;
    if (name == "idx") rows = static_cast<std::int64_t>(f.dims(name).at(0));
  }
  if (rows != m.shard.size()) {
    DUALRS_THROW(IoError, "shard file '", path, "' has ", rows, " rows for positions [", m.shard.begin, ", ", m.shard.end, ")");
  }
  return info;
}

ShardScan scan_shards(const std::string& out_dir, const ShardSpec& spec) {
  const std::string folder = shards_folder(out_dir);
  ensure_directory(folder);
  std::set<std::int64_t> mine;
  for (const Shard& s : spec.shards) mine.insert(s.index);

  // Leftovers of interrupted writers (only of our shards: another subset's job may be
  // writing its own right now).
  ShardScan scan;
  for (std::int64_t index : mine) {
    const std::string tmp = temporary_path(shard_path(out_dir, index));
    std::error_code ec;
    if (fs::exists(tmp, ec) && fs::remove(tmp, ec)) scan.removed_tmp.push_back(tmp);
  }

  // First pass: refuse another config's shards before touching anything.
  std::map<std::int64_t, std::string> files = list_shard_files(folder);
  std::map<std::int64_t, ShardFileInfo> good;
  std::map<std::int64_t, std::string> damaged;
  for (const auto& [index, path] : files) {
    try {
      good.emplace(index, inspect_shard(path));
    } catch (const IoError& e) {
      damaged.emplace(index, e.what());
      continue;
    }
    const ShardFileInfo& s = good.at(index);
    if (s.schema != spec.schema || s.provenance.config_sha256 != spec.config_sha256) {
      DUALRS_THROW(IoError, "output folder '", out_dir, "' holds shards of another config: ", path, " is a ", s.schema,
                   " shard with config_sha256 ", s.provenance.config_sha256, ", this run is ", spec.schema,
                   " with config_sha256 ", spec.config_sha256,
                   ". Use another output folder, or delete its shards/ to start over");
    }
    if (spec.rng_layout_version != 0 && s.provenance.rng_layout_version != spec.rng_layout_version) {
      DUALRS_THROW(IoError, "output folder '", out_dir, "' holds shards drawn with RNG layout version ",
                   s.provenance.rng_layout_version, " (", path, "), this dualrs draws layout version ",
                   spec.rng_layout_version,
                   ": resuming would mix two noise layouts in one result. Finish the stage with the dualrs that "
                   "started it, use another output folder, or delete its shards/ to start over");
    }
    if (s.meta.selection_count != spec.selection_count || s.meta.selection_sha256 != spec.selection_sha256) {
      DUALRS_THROW(IoError, "output folder '", out_dir, "' holds shards of another selection: ", path, " covers ",
                   s.meta.selection_count, " examples with selection_sha256 ", short_hash(s.meta.selection_sha256),
                   "..., this run selects ", spec.selection_count, " with ", short_hash(spec.selection_sha256),
                   "... (did the dataset or split file change?). Use another output folder, or delete its shards/");
    }
  }
  // Damaged shards are moved aside, never merged, and recomputed.
  if (!damaged.empty()) {
    const fs::path aside = fs::path(folder) / "corrupt";
    ensure_directory(aside.string());
    for (const auto& [index, why] : damaged) {
      const std::string from = files.at(index);
      const fs::path to = aside / (fs::path(from).filename().string() + "." + utc_now());
      std::error_code ec;
      fs::rename(from, to, ec);
      if (ec) DUALRS_THROW(IoError, "cannot move damaged shard '", from, "' to '", to.string(), "': ", ec.message());
      scan.moved_aside.push_back(from + ": " + why + "; moved to " + to.string() + ", it will be recomputed");
    }
  }
  for (const Shard& s : spec.shards) {
    auto it = good.find(s.index);
    if (it != good.end() && it->second.meta.shard == s) {
      scan.complete.push_back(s);
      scan.examples_complete += s.size();
    } else {
      scan.pending.push_back(s);
    }
  }
  return scan;
}

// --- Merge -----------------------------------------------------------------------------------

namespace {

/// Checks that `infos` agree and cover the selection exactly; returns them in shard order.
std::vector<ShardFileInfo> check_shard_set(const std::string& dir, std::vector<ShardFileInfo> infos,
                                           const std::string& expected_config_sha256) {
  const ShardFileInfo& first = infos.front();
  for (const ShardFileInfo& s : infos) {
    const bool same = s.schema == first.schema && s.provenance.config_sha256 == first.provenance.config_sha256 &&
                      s.provenance.rng_layout_version == first.provenance.rng_layout_version &&
                      s.meta.selection_count == first.meta.selection_count &&
                      s.meta.selection_sha256 == first.meta.selection_sha256 && s.meta.shard_size == first.meta.shard_size;
    if (!same) {
      DUALRS_THROW(IoError, "shards in '", dir, "/shards' do not belong together: ", first.path, " is ", first.schema,
                   " config_sha256 ", first.provenance.config_sha256, " (", first.meta.selection_count,
                   " examples, shard_size ", first.meta.shard_size, ", RNG layout ", first.provenance.rng_layout_version,
                   "), ", s.path, " is ", s.schema, " config_sha256 ", s.provenance.config_sha256, " (",
                   s.meta.selection_count, " examples, shard_size ", s.meta.shard_size, ", RNG layout ",
                   s.provenance.rng_layout_version, ")");
    }
  }
  if (!expected_config_sha256.empty() && first.provenance.config_sha256 != expected_config_sha256) {
    DUALRS_THROW(IoError, "shards in '", dir, "/shards' have config_sha256 ", first.provenance.config_sha256,
                 ", expected ", expected_config_sha256);
  }
  const std::vector<Shard> expected = make_shards(first.meta.selection_count, first.meta.shard_size);
  std::map<std::int64_t, const ShardFileInfo*> by_index;
  for (const ShardFileInfo& s : infos) by_index[s.meta.shard.index] = &s;
  std::vector<std::int64_t> missing;
  std::vector<ShardFileInfo> ordered;
  for (const Shard& e : expected) {
    auto it = by_index.find(e.index);
    if (it == by_index.end()) {
      missing.push_back(e.index);
      continue;
    }
    if (!(it->second->meta.shard == e)) {
      DUALRS_THROW(IoError, "shard file ", it->second->path, " covers positions [", it->second->meta.shard.begin, ", ",
                   it->second->meta.shard.end, "), expected [", e.begin, ", ", e.end, ")");
    }
    ordered.push_back(*it->second);
  }
  if (!missing.empty()) {
    DUALRS_THROW(IoError, "cannot merge '", dir, "': ", missing.size(), " of ", expected.size(), " shards missing (",
                 describe_shard_indices(missing),
                 "). Run the stage again (it resumes) or wait for the jobs computing them");
  }
  if (ordered.size() != infos.size()) {
    DUALRS_THROW(IoError, "'", dir, "/shards' holds shards beyond the ", expected.size(), " of its selection");
  }
  return ordered;
}

/// Checks that the rows of all shards are exactly the selection's examples, by its hash.
void check_selection(const std::string& dir, const std::vector<std::int64_t>& idx, const ShardFileInfo& first) {
  if (static_cast<std::int64_t>(idx.size()) != first.meta.selection_count ||
      selection_sha256(idx) != first.meta.selection_sha256) {
    DUALRS_THROW(IoError, "the shards in '", dir, "/shards' hold ", idx.size(), " rows that are not the selection's ",
                 first.meta.selection_count, " examples (selection_sha256 differs): some index is missing or repeated");
  }
  std::vector<std::int64_t> sorted = idx;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    DUALRS_THROW(IoError, "the selection of '", dir, "' repeats an example index");
  }
}

/// The merged file's provenance: the shards' own, with world sizes and ids combined.
Provenance merged_provenance(const std::vector<ShardFileInfo>& shards, MergeReport& report) {
  Provenance p = shards.front().provenance;
  std::set<std::int64_t> worlds;
  std::set<std::string> jobs;
  for (const ShardFileInfo& s : shards) {
    worlds.insert(s.provenance.world_size);
    if (!s.provenance.slurm_job_id.empty()) jobs.insert(s.provenance.slurm_job_id);
    p.created_utc = std::min(p.created_utc, s.provenance.created_utc);
  }
  report.world_sizes.assign(worlds.begin(), worlds.end());
  p.world_size = static_cast<int>(*worlds.rbegin());
  std::string world_text, job_text;
  for (std::int64_t w : worlds) world_text += (world_text.empty() ? "" : ",") + std::to_string(w);
  for (const std::string& j : jobs) job_text += (job_text.empty() ? "" : ",") + j;
  p.slurm_job_id = job_text;
  p.hostname = host_name();
  p.extra = nlohmann::json::object();
  p.extra["merged_shards"] = static_cast<std::int64_t>(shards.size());
  p.extra["shard_size"] = shards.front().meta.shard_size;
  p.extra["shard_world_sizes"] = world_text;
  p.completion_mark = false;
  return p;
}

/// Counts examples with non-finite copies; `non_finite` has `width` values per example.
void count_non_finite(const std::vector<std::int64_t>& non_finite, std::size_t width, MergeReport& report) {
  for (std::size_t i = 0; i * width < non_finite.size(); ++i) {
    std::int64_t copies = 0;
    for (std::size_t j = 0; j < width; ++j) copies += non_finite[i * width + j];
    report.non_finite_copies += copies;
    report.non_finite_examples += copies > 0 ? 1 : 0;
  }
}

Columns columns(LabelSet& l) {
  const auto s = static_cast<std::size_t>(l.num_sigmas());
  return {{{&l.idx, 1}, {&l.label, 1}, {&l.top_count, s}, {&l.non_finite, s}, {&l.best, 1}}, {{&l.radii, s}, {&l.max_radius, 1}}};
}

Columns columns(SigmaEstimates& e) {
  return {{{&e.idx, 1}, {&e.label, 1}, {&e.sigma_index, 1}, {&e.counts, e.sigma_candidates.size()}, {&e.non_finite, 1}}, {}};
}

/// labels / sigma estimates: rows of every shard in position order, checked, sorted by idx.
template <typename Table, typename ReadFn>
Table merged_table(const std::string& dir, const std::vector<ShardFileInfo>& shards, ReadFn read) {
  Table all = read(shards.front().path);
  for (std::size_t i = 1; i < shards.size(); ++i) {
    Table part = read(shards[i].path);
    columns(all).append(columns(part));
  }
  check_selection(dir, all.idx, shards.front());
  columns(all).sort_by(std::vector<std::int64_t>(all.idx));
  return all;
}

void merge_labels(const std::string& dir, const std::vector<ShardFileInfo>& shards, const Provenance& p,
                  const MergeDerivations& derive, MergeReport& report) {
  LabelSet all = merged_table<LabelSet>(dir, shards, [](const std::string& path) { return read_labels(path, true); });
  if (!derive.labels) throw std::invalid_argument("merging labels shards needs MergeDerivations::labels (the weights)");
  derive.labels(all);
  count_non_finite(all.non_finite, all.sigma_candidates.size(), report);
  const std::string out = (fs::path(dir) / "labels.h5").string();
  write_labels(out, all, p);
  report.outputs.push_back(out);
  report.examples = all.size();
}

void merge_sigma_estimates(const std::string& dir, const std::vector<ShardFileInfo>& shards, const Provenance& p,
                           MergeReport& report) {
  SigmaEstimates all = merged_table<SigmaEstimates>(dir, shards, read_sigma_estimates);
  count_non_finite(all.non_finite, 1, report);
  const std::string out = (fs::path(dir) / "sigma_estimates.h5").string();
  write_sigma_estimates(out, all, p);
  report.outputs.push_back(out);
  report.examples = all.size();
}

/// certify / predict: the result sinks sort by idx and write HDF5 + TSV.
template <typename Results, typename ReadFn>
void merge_results(const std::string& dir, const std::string& kind, const std::vector<ShardFileInfo>& shards,
                   const Provenance& p, MergeReport& report, ReadFn read) {
  std::vector<Results> parts;
  std::vector<std::int64_t> idx;
  for (const ShardFileInfo& s : shards) {
    parts.push_back(read(s.path));
    for (const auto& r : parts.back().records) idx.push_back(r.idx);
  }
  check_selection(dir, idx, shards.front());
  const std::string h5 = (fs::path(dir) / (kind + ".h5")).string();
  const std::string tsv = (fs::path(dir) / (kind + ".tsv")).string();
  Hdf5ResultSink h5_sink(h5, parts.front().info, p);
  TsvResultSink tsv_sink(tsv);
  // Each part's records move into the HDF5 sink and the part is released, so the merge holds
  // one copy of the rows (their counts are [N, K]: 0.4 GB each for 50,000 ImageNet images).
  for (Results& part : parts) {
    for (auto& r : part.records) {
      tsv_sink.write(r);
      report.non_finite_copies += r.non_finite;
      report.non_finite_examples += r.non_finite > 0 ? 1 : 0;
      h5_sink.write(std::move(r));
    }
    decltype(part.records)().swap(part.records);
  }
  h5_sink.finish();
  tsv_sink.finish();
  report.outputs = {h5, tsv};
  report.examples = static_cast<std::int64_t>(idx.size());
}

/// SHA-256 over the names and bytes of the shard files, in shard order: identifies exactly what
/// a merged file was made from (a recomputed shard differs at least in its times).
std::string shard_set_sha256(const std::vector<ShardFileInfo>& shards) {
  std::string digests;
  for (const ShardFileInfo& s : shards) {
    std::ifstream in(s.path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) DUALRS_THROW(IoError, "cannot read shard file '", s.path, "'");
    digests += fs::path(s.path).filename().string() + '\t' + sha256_hex(bytes) + '\n';
  }
  return sha256_hex(digests);
}

/// The files a merge of `schema` writes into `dir`, the HDF5 file first.
std::vector<std::string> merge_outputs(const std::string& dir, const std::string& schema) {
  const fs::path d(dir);
  if (schema == kLabels) return {(d / "labels.h5").string()};
  if (schema == kSigmaEstimates) return {(d / "sigma_estimates.h5").string()};
  if (schema == kCertify) return {(d / "certify.h5").string(), (d / "certify.tsv").string()};
  if (schema == kPredict) return {(d / "predict.h5").string(), (d / "predict.tsv").string()};
  DUALRS_THROW(IoError, "shards in '", dir, "/shards' have schema \"", schema, "\", which dualrs cannot merge");
}

/// Whether `outputs` already hold the merge of the shards with digest `shard_set`: all exist as
/// regular files and the HDF5 one names this digest, schema and config and reads in full (its
/// checksums hold). Fills the report's counts from it. Any doubt means "merge again".
bool already_merged(const std::vector<std::string>& outputs, const std::string& schema, const Provenance& p,
                    const std::string& shard_set, MergeReport& report) {
  std::error_code ec;
  for (const std::string& out : outputs) {
    if (!fs::is_regular_file(fs::symlink_status(out, ec))) return false;
  }
  try {
    Hdf5File f(outputs.front(), FileMode::kReadOnly);
    const std::string root = "/";
    if (!f.has_attr(root, kShardSetAttr) || f.attr_string(root, kShardSetAttr) != shard_set ||
        f.attr_string(root, "schema") != schema || f.attr_string(root, "config_sha256") != p.config_sha256) {
      return false;
    }
    for (const std::string& name : f.list(root)) {
      if (f.dtype(name).rfind("float", 0) == 0) {
        f.read_float64(name);
      } else {
        f.read_int64(name);
      }
    }
    MergeReport found = report;
    found.examples = static_cast<std::int64_t>(f.dims("idx").at(0));
    if (f.exists("non_finite")) {
      const std::vector<std::uint64_t> dims = f.dims("non_finite");
      count_non_finite(f.read_int64("non_finite"), dims.size() == 2 ? static_cast<std::size_t>(dims[1]) : 1, found);
    }
    found.outputs = outputs;
    found.up_to_date = true;
    report = found;
    return true;
  } catch (const IoError&) {
    return false;
  }
}

}  // namespace

MergeReport merge_shards(const std::string& dir, const std::string& expected_config_sha256,
                         const MergeDerivations& derive) {
  const std::map<std::int64_t, std::string> files = list_shard_files(shards_folder(dir));
  if (files.empty()) DUALRS_THROW(IoError, "no shard files in '", shards_folder(dir), "'");
  std::vector<ShardFileInfo> infos;
  for (const auto& [index, path] : files) {
    try {
      infos.push_back(inspect_shard(path));
    } catch (const IoError& e) {
      DUALRS_THROW(IoError, "cannot merge '", dir, "': a shard file is damaged (", e.what(),
                   "); run the stage again: it moves the file aside and recomputes the shard");
    }
  }
  const std::vector<ShardFileInfo> shards = check_shard_set(dir, std::move(infos), expected_config_sha256);
  MergeReport report;
  report.schema = shards.front().schema;
  report.shards = static_cast<std::int64_t>(shards.size());
  Provenance p = merged_provenance(shards, report);
  const std::string shard_set = shard_set_sha256(shards);
  p.extra[kShardSetAttr] = shard_set;
  if (already_merged(merge_outputs(dir, report.schema), report.schema, p, shard_set, report)) return report;
  if (report.schema == kLabels) {
    merge_labels(dir, shards, p, derive, report);
  } else if (report.schema == kSigmaEstimates) {
    merge_sigma_estimates(dir, shards, p, report);
  } else if (report.schema == kCertify) {
    merge_results<CertifyResults>(dir, "certify", shards, p, report, read_certify_results);
  } else if (report.schema == kPredict) {
    merge_results<PredictResults>(dir, "predict", shards, p, report, read_predict_results);
  } else {
    DUALRS_THROW(IoError, "shards in '", dir, "/shards' have schema \"", report.schema, "\", which dualrs cannot merge");
  }
  return report;
}

}  // namespace dualrs::io
