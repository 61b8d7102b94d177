// Writes the shard files of a sharded stage at the scale of the paper's ImageNet jobs, with
// synthetic values, so that `dualrs merge` can be timed on them (bench/run_merge_scale.sh).
// The files are the ones the stages write: the same writers (io::write_labels, the HDF5
// result sink), the same shard attributes and completion mark, one config for all shards.
//
//   bench_merge_scale labels  OUT_DIR EXAMPLES SHARD_SIZE SIGMAS   CONFIG_JSON
//   bench_merge_scale certify OUT_DIR EXAMPLES SHARD_SIZE CLASSES  CONFIG_JSON
//
// labels: Σ = SIGMAS levels (0.25, 0.5, 1.0, ...), N = 100 votes; certify: Dual RS records over
// Σ = {0.25, 0.5, 1.0} with CLASSES-class vote counts (n0 = 100, n = 10,000), most classes at 0
// as on ImageNet. Values are drawn from a fixed-seed generator: they only need a valid layout.

#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualrs/core/shards.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/label_files.h"
#include "dualrs/io/provenance.h"
#include "dualrs/io/result_files.h"
#include "dualrs/io/shard_files.h"

namespace {

using dualrs::Shard;
namespace io = dualrs::io;

struct Args {
  std::string kind, out;
  std::int64_t examples = 0, shard_size = 0, width = 0;
  nlohmann::json config;
};

std::int64_t parse_count(const char* text, const char* what) {
  const long long v = std::stoll(text);
  if (v < 1) throw std::invalid_argument(std::string(what) + " must be >= 1, got " + text);
  return v;
}

Args parse(int argc, char** argv) {
  if (argc != 7) {
    throw std::invalid_argument(
        "usage: bench_merge_scale labels|certify OUT_DIR EXAMPLES SHARD_SIZE SIGMAS|CLASSES CONFIG_JSON");
  }
  Args a;
  a.kind = argv[1];
  if (a.kind != "labels" && a.kind != "certify") throw std::invalid_argument("kind must be labels or certify");
  a.out = argv[2];
  a.examples = parse_count(argv[3], "EXAMPLES");
  a.shard_size = parse_count(argv[4], "SHARD_SIZE");
  a.width = parse_count(argv[5], a.kind == "labels" ? "SIGMAS" : "CLASSES");
  std::ifstream in(argv[6]);
  if (!in) throw std::invalid_argument(std::string("cannot read ") + argv[6]);
  a.config = nlohmann::json::parse(in);
  a.config["bench_merge_scale"] = {{"kind", a.kind}, {"examples", a.examples}, {"shard_size", a.shard_size}};
  return a;
}

std::vector<double> sigma_levels(std::int64_t count) {
  std::vector<double> sigmas;
  for (std::int64_t i = 0; i < count; ++i) sigmas.push_back(0.25 * static_cast<double>(1LL << i));
  return sigmas;
}

// Rows [shard.begin, shard.end) of a labels file over `sigmas`.
io::LabelSet label_rows(const Shard& shard, const std::vector<double>& sigmas, std::mt19937_64& gen) {
  io::LabelSet l;
  l.sigma_candidates = sigmas;
  l.n = 100;
  l.dataset = "imagenet";
  l.split = "train";
  const auto s = static_cast<std::int64_t>(sigmas.size());
  std::uniform_int_distribution<std::int64_t> votes(0, 100), cls(0, 999);
  for (std::int64_t e = shard.begin; e < shard.end; ++e) {
    l.idx.push_back(e);
    l.label.push_back(cls(gen));
    std::int64_t best = -1;
    double max_radius = 0;
    for (std::int64_t i = 0; i < s; ++i) {
      const std::int64_t top = votes(gen);
      // A radius-like value: 0 below a majority, growing with the votes and σ.
      const double r = top > 60 ? sigmas[static_cast<std::size_t>(i)] * static_cast<double>(top - 60) / 40.0 : 0.0;
      l.top_count.push_back(top);
      l.radii.push_back(r);
      l.non_finite.push_back(0);
      if (r > max_radius) {
        max_radius = r;
        best = i;
      }
    }
    l.best.push_back(best);
    l.max_radius.push_back(max_radius);
  }
  return l;
}

// A Dual RS record with `classes` vote counts, a few classes holding all the votes.
dualrs::CertifyRecord certify_record(std::int64_t e, std::int64_t classes, std::mt19937_64& gen) {
  std::uniform_int_distribution<std::int64_t> cls(0, classes - 1), share(0, 100);
  dualrs::CertifyRecord r;
  r.idx = e;
  r.label = cls(gen);
  r.sigma_index = share(gen) % 3;
  r.sigma = 0.25 * static_cast<double>(1LL << r.sigma_index);
  r.counts_selection.assign(static_cast<std::size_t>(classes), 0);
  r.counts.assign(static_cast<std::size_t>(classes), 0);
  const std::int64_t top = share(gen) % 2 == 0 ? r.label : cls(gen);
  const std::int64_t a = 5000 + 50 * share(gen);
  r.counts[static_cast<std::size_t>(top)] = std::min<std::int64_t>(a, 10000);
  r.counts[static_cast<std::size_t>(cls(gen))] += 10000 - r.counts[static_cast<std::size_t>(top)];
  r.counts_selection[static_cast<std::size_t>(top)] = 100;
  r.n_a = r.counts[static_cast<std::size_t>(top)];
  r.p_a_lower = static_cast<double>(r.n_a) / 10000.0 - 0.01;
  r.prediction = r.p_a_lower > 0.5 ? top : dualrs::kAbstain;
  r.r_c = r.prediction >= 0 ? r.sigma * (r.p_a_lower - 0.5) * 4 : 0.0;
  r.r_sigma = 0.5 * static_cast<double>(share(gen)) / 100.0;
  r.radius = r.prediction >= 0 ? std::min(r.r_c, r.r_sigma) : 0.0;
  r.estimator_counts_selection = {0, 0, 0};
  r.estimator_counts_selection[static_cast<std::size_t>(r.sigma_index)] = 100;
  r.estimator_counts = {0, 0, 0};
  r.estimator_counts[static_cast<std::size_t>(r.sigma_index)] = 10000;
  r.n_used = 10100;
  r.n_used_estimator = 10100;
  r.time_s = 1.0;
  return r;
}

void generate(const Args& a) {
  const std::vector<Shard> shards = dualrs::make_shards(a.examples, a.shard_size);
  std::vector<std::int64_t> all_idx(static_cast<std::size_t>(a.examples));
  for (std::int64_t e = 0; e < a.examples; ++e) all_idx[static_cast<std::size_t>(e)] = e;
  const std::string selection = io::selection_sha256(all_idx);
  const bool labels = a.kind == "labels";
  const io::Provenance base = io::make_provenance(labels ? "dualrs.labels" : "dualrs.certify",
                                                  labels ? "label" : "certify", a.config, 0, 1);
  io::ensure_directory(io::shards_folder(a.out));
  std::mt19937_64 gen(20261203);
  const std::vector<double> sigmas = sigma_levels(labels ? a.width : 3);
  for (const Shard& shard : shards) {
    const io::ShardMeta meta{shard, a.shard_size, static_cast<std::int64_t>(shards.size()), a.examples, selection,
                             shard.index % 128};
    const io::Provenance p = io::shard_provenance(base, meta);
    const std::string path = io::shard_path(a.out, shard.index);
    if (labels) {
      io::write_labels(path, label_rows(shard, sigmas, gen), p);
      continue;
    }
    io::ResultInfo info;
    info.method = "dual_rs";
    info.kind = "certify";
    info.n0 = 100;
    info.n = 10000;
    info.alpha = 0.001;
    info.num_classes = a.width;
    info.dataset = "imagenet";
    info.split = "val";
    info.sigma_candidates = sigmas;
    info.sigma_e = 0.5;
    info.alpha_e = 0.0005;
    info.alpha_c = 0.0005;
    io::Hdf5ResultSink sink(path, info, p);
    for (std::int64_t e = shard.begin; e < shard.end; ++e) sink.write(certify_record(e, a.width, gen));
    sink.finish();
  }
  std::cout << "bench_merge_scale: " << shards.size() << " " << a.kind << " shards of " << a.examples
            << " examples in " << io::shards_folder(a.out) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  try {
    generate(parse(argc, argv));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_merge_scale: " << e.what() << "\n";
    return 1;
  }
}
