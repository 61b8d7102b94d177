#include "dualrs/io/label_files.h"

#include <cstdio>

#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/hdf5_file.h"

namespace dualrs::io {
namespace {

constexpr std::int64_t kVersion = 1;

nlohmann::json read_provenance(const Hdf5File& f) {
  nlohmann::json out = nlohmann::json::object();
  for (const char* name : {"command", "config_sha256", "git_revision", "created_utc", "finished_utc"}) {
    if (f.has_attr("/", name)) out[name] = f.attr_string("/", name);
  }
  if (f.has_attr("/", "config")) out["config"] = nlohmann::json::parse(f.attr_string("/", "config"), nullptr, false);
  return out;
}

void check_schema(const Hdf5File& f, const std::string& path, const std::string& expected) {
  if (!f.has_attr("/", "schema") || f.attr_string("/", "schema") != expected) {
    DUALRS_THROW(IoError, "'", path, "' is not a ", expected, " file (root attribute 'schema' is ",
                 f.has_attr("/", "schema") ? "\"" + f.attr_string("/", "schema") + "\"" : std::string("missing"), ")");
  }
  if (f.attr_int64("/", "schema_version") != kVersion) {
    DUALRS_THROW(IoError, "'", path, "' has ", expected, " schema_version ", f.attr_int64("/", "schema_version"),
                 ", this build reads ", kVersion);
  }
}

template <typename T>
void check_size(const std::vector<T>& v, std::size_t want, const char* name, const std::string& path) {
  if (v.size() != want) DUALRS_THROW(IoError, "dataset '", name, "' in '", path, "' has ", v.size(), " values, expected ", want);
}

template <typename WriteFn>
void write_atomically(const std::string& path, const Provenance& provenance, WriteFn&& body) {
  const std::string tmp = temporary_path(path);
  try {
    {
      Hdf5File f(tmp, FileMode::kCreateTruncate);
      body(f);
      write_completion_mark(f, provenance);
      f.close();
    }
    publish_file(tmp, path);
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

}  // namespace

void write_labels(const std::string& path, const LabelSet& l, const Provenance& provenance) {
  const std::size_t n = l.idx.size(), s = l.sigma_candidates.size();
  check_size(l.label, n, "label", path);
  check_size(l.radii, n * s, "radii", path);
  check_size(l.top_count, n * s, "top_count", path);
  check_size(l.best, n, "best", path);
  check_size(l.max_radius, n, "max_radius", path);
  const std::vector<std::int64_t> non_finite = l.non_finite.empty() ? std::vector<std::int64_t>(n * s, 0) : l.non_finite;
  check_size(non_finite, n * s, "non_finite", path);
  const bool weights = !(provenance.completion_mark && l.weight_e.empty());
  if (weights) check_size(l.weight_e, n, "weight_e", path);
  write_atomically(path, provenance, [&](Hdf5File& f) {
    f.set_attr("/", "schema", std::string("dualrs.labels"));
    f.set_attr("/", "schema_version", kVersion);
    f.set_attr("/", "sigma_candidates", l.sigma_candidates);
    f.set_attr("/", "n", l.n);
    f.set_attr("/", "alpha", l.alpha);
    f.set_attr("/", "dataset", l.dataset);
    f.set_attr("/", "split", l.split);
    f.set_attr("/", "routing", static_cast<std::int64_t>(l.routing ? 1 : 0));
    Provenance p = provenance;
    p.finished_utc = utc_now();
    write_provenance_attributes(f, p);
    f.write_int64("idx", l.idx, {n});
    f.write_int64("label", l.label, {n});
    f.write_float64("radii", l.radii, {n, s});
    f.write_int64("top_count", l.top_count, {n, s});
    f.write_int64("non_finite", non_finite, {n, s});
    f.write_int64("best", l.best, {n});
    f.write_float64("max_radius", l.max_radius, {n});
    if (weights) {
      std::vector<std::int8_t> kept(n);
      for (std::size_t i = 0; i < n; ++i) kept[i] = l.best[i] >= 0 ? 1 : 0;
      f.write_float64("weight_e", l.weight_e, {n});
      f.write_int8("kept", kept, {n});
    }
  });
}

LabelSet read_labels(const std::string& path, bool shard) {
  Hdf5File f(path, FileMode::kReadOnly);
  check_schema(f, path, "dualrs.labels");
  LabelSet l;
  l.sigma_candidates = f.attr_doubles("/", "sigma_candidates");
  l.n = f.attr_int64("/", "n");
  l.alpha = f.attr_double("/", "alpha");
  l.dataset = f.attr_string("/", "dataset");
  l.split = f.attr_string("/", "split");
  l.routing = f.attr_int64("/", "routing") != 0;
  l.idx = f.read_int64("idx");
  l.label = f.read_int64("label");
  l.radii = f.read_float64("radii");
  l.top_count = f.read_int64("top_count");
  l.best = f.read_int64("best");
  l.max_radius = f.read_float64("max_radius");
  if (!shard) l.weight_e = f.read_float64("weight_e");
  const std::size_t n = l.idx.size(), s = l.sigma_candidates.size();
  // Files written before `non_finite` existed had none.
  l.non_finite = f.exists("non_finite") ? f.read_int64("non_finite") : std::vector<std::int64_t>(n * s, 0);
  check_size(l.label, n, "label", path);
  check_size(l.radii, n * s, "radii", path);
  check_size(l.top_count, n * s, "top_count", path);
  check_size(l.non_finite, n * s, "non_finite", path);
  check_size(l.best, n, "best", path);
  check_size(l.max_radius, n, "max_radius", path);
  if (!shard) check_size(l.weight_e, n, "weight_e", path);
  l.provenance = read_provenance(f);
  return l;
}

void write_sigma_estimates(const std::string& path, const SigmaEstimates& e, const Provenance& provenance) {
  const std::size_t n = e.idx.size(), s = e.sigma_candidates.size();
  check_size(e.label, n, "label", path);
  check_size(e.sigma_index, n, "sigma_index", path);
  check_size(e.counts, n * s, "counts", path);
  const std::vector<std::int64_t> non_finite = e.non_finite.empty() ? std::vector<std::int64_t>(n, 0) : e.non_finite;
  check_size(non_finite, n, "non_finite", path);
  write_atomically(path, provenance, [&](Hdf5File& f) {
    f.set_attr("/", "schema", std::string("dualrs.sigma_estimates"));
    f.set_attr("/", "schema_version", kVersion);
    f.set_attr("/", "sigma_candidates", e.sigma_candidates);
    f.set_attr("/", "sigma_e", e.sigma_e);
    f.set_attr("/", "n", e.n);
    f.set_attr("/", "dataset", e.dataset);
    f.set_attr("/", "split", e.split);
    Provenance p = provenance;
    p.finished_utc = utc_now();
    write_provenance_attributes(f, p);
    std::vector<double> sigma(n);
    for (std::size_t i = 0; i < n; ++i) sigma[i] = e.sigma_candidates.at(static_cast<std::size_t>(e.sigma_index[i]));
    f.write_int64("idx", e.idx, {n});
    f.write_int64("label", e.label, {n});
    f.write_int64("sigma_index", e.sigma_index, {n});
    f.write_float64("sigma", sigma, {n});
    f.write_int64("counts", e.counts, {n, s});
    f.write_int64("non_finite", non_finite, {n});
  });
}

SigmaEstimates read_sigma_estimates(const std::string& path) {
  Hdf5File f(path, FileMode::kReadOnly);
  check_schema(f, path, "dualrs.sigma_estimates");
  SigmaEstimates e;
  e.sigma_candidates = f.attr_doubles("/", "sigma_candidates");
  e.sigma_e = f.attr_double("/", "sigma_e");
  e.n = f.attr_int64("/", "n");
  e.dataset = f.attr_string("/", "dataset");
  e.split = f.attr_string("/", "split");
  e.idx = f.read_int64("idx");
  e.label = f.read_int64("label");
  e.sigma_index = f.read_int64("sigma_index");
  e.counts = f.read_int64("counts");
  const std::size_t n = e.idx.size(), s = e.sigma_candidates.size();
  e.non_finite = f.exists("non_finite") ? f.read_int64("non_finite") : std::vector<std::int64_t>(n, 0);
  check_size(e.non_finite, n, "non_finite", path);
  check_size(e.label, n, "label", path);
  check_size(e.sigma_index, n, "sigma_index", path);
  check_size(e.counts, n * s, "counts", path);
  for (auto i : e.sigma_index) {
    if (i < 0 || i >= static_cast<std::int64_t>(s)) DUALRS_THROW(IoError, "'", path, "': sigma_index ", i, " outside Σ");
  }
  e.provenance = read_provenance(f);
  return e;
}

}  // namespace dualrs::io
