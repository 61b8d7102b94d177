#include "dualrs/pipeline/sharded_stage.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "dualrs/core/dual.h"
#include "dualrs/core/error.h"
#include "dualrs/dist/shard_runner.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/dir_lock.h"
#include "dualrs/io/shard_files.h"

namespace dualrs::pipeline {
namespace fs = std::filesystem;

namespace {

/// This rank's log file, `<out>/logs/rank-NNNN.log`, appended to by every run.
class RankLog {
 public:
  RankLog(const std::string& out_dir, int rank) {
    const fs::path dir = fs::path(out_dir) / "logs";
    io::ensure_directory(dir.string());
    char name[32];
    std::snprintf(name, sizeof name, "rank-%04d.log", rank);
    path_ = (dir / name).string();
    file_.reset(std::fopen(path_.c_str(), "a"));
    if (!file_) DUALRS_THROW(IoError, "cannot open log file '", path_, "'");
  }
  void line(const std::string& text) {
    std::fprintf(file_.get(), "%s %s\n", io::utc_now().c_str(), text.c_str());
    std::fflush(file_.get());
  }

 private:
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::string path_;
  std::unique_ptr<std::FILE, Closer> file_;
};

std::vector<std::int64_t> encode(const std::vector<Shard>& shards) {
  std::vector<std::int64_t> out;
  for (const Shard& s : shards) out.insert(out.end(), {s.index, s.begin, s.end});
  return out;
}

std::vector<Shard> decode(const std::vector<std::int64_t>& flat) {
  std::vector<Shard> out;
  for (std::size_t i = 0; i + 2 < flat.size(); i += 3) out.push_back({flat[i], flat[i + 1], flat[i + 2]});
  return out;
}

}  // namespace

io::MergeDerivations merge_derivations() {
  io::MergeDerivations derive;
  derive.labels = [](io::LabelSet& labels) { labels.weight_e = rebalancing_weights(labels.best, labels.num_sigmas()); };
  return derive;
}

void record_world(const StageContext& ctx, io::Provenance& provenance) {
  provenance.world_size = ctx.world.size;
  provenance.library_versions += "; mpi " + ctx.mpi_version;
}

bool run_sharded_stage(StageContext& ctx, const std::string& out_dir, ShardedStage& stage) {
  const auto count = static_cast<std::int64_t>(stage.indices.size());
  const std::vector<Shard> all = make_shards(count, stage.shard_size);
  std::vector<Shard> mine;  // this run's shards: all, or the subset's
  for (const Shard& s : all) {
    if (ctx.subset.contains(s)) mine.push_back(s);
  }
  io::ShardSpec spec;
  spec.schema = stage.schema;
  spec.config_sha256 = stage.provenance.config_sha256;
  spec.selection_count = count;
  spec.selection_sha256 = io::selection_sha256(stage.indices);
  spec.shards = mine;
  spec.rng_layout_version = stage.provenance.rng_layout_version;

  // 1. Lock, clean up, find what is left (rank 0).
  std::optional<io::DirectoryLock> lock;
  std::vector<std::int64_t> pending_flat;
  std::int64_t done_before = 0;
  ctx.on_root([&] {
    std::string notice;
    lock = io::DirectoryLock::acquire(out_dir, "dualrs " + stage.command, ctx.subset, &notice);
    if (!notice.empty()) say(ctx, "%s: %s", stage.command.c_str(), notice.c_str());
    for (const std::string& line : ctx.plan_lines) say(ctx, "%s", line.c_str());
    ctx.plan_lines.clear();
    const io::ShardScan scan = io::scan_shards(out_dir, spec);
    for (const std::string& line : scan.moved_aside) warn(ctx, "%s: damaged shard %s", stage.command.c_str(), line.c_str());
    if (!scan.complete.empty()) {
      say(ctx, "%s: resuming: %zu of %zu shards already done in %s", stage.command.c_str(), scan.complete.size(),
          mine.size(), io::shards_folder(out_dir).c_str());
    }
    pending_flat = encode(scan.pending);
    done_before = scan.examples_complete;
  });
  ctx.comm.broadcast(pending_flat, 0);
  const std::vector<Shard> pending = decode(pending_flat);

  // 2. Compute.
  std::optional<RankLog> log;
  std::int64_t mine_examples = 0;
  for (const Shard& s : mine) mine_examples += s.size();
  ctx.agreed([&] {
    log.emplace(out_dir, ctx.world.rank);
    log->line("dualrs " + stage.command + ": rank " + std::to_string(ctx.world.rank) + " of " +
              std::to_string(ctx.world.size) + " (node-local " + std::to_string(ctx.world.local_rank) + " of " +
              std::to_string(ctx.world.local_size) + ") on " + ctx.world.host + ", pid " + std::to_string(::getpid()) +
              "; " + std::to_string(pending.size()) + " of " + std::to_string(mine.size()) + " shards to do" +
              (ctx.subset.all() ? "" : " (subset " + ctx.subset.text() + ")"));
  });
  ProgressMeter progress(stage.command, mine_examples, "ex", ctx.is_root() ? ctx.verbosity : Verbosity::kQuiet);
  progress.resume_from(done_before);
  dist::ShardCallbacks callbacks;
  callbacks.compute = stage.compute;
  callbacks.publish = [&](const Shard& shard) {
    io::ShardMeta meta{shard, stage.shard_size, static_cast<std::int64_t>(all.size()), count, spec.selection_sha256,
                       ctx.world.rank};
    stage.write_shard(shard, io::shard_path(out_dir, shard.index), io::shard_provenance(stage.provenance, meta));
  };
  callbacks.discard = [&](const Shard&) { stage.discard(); };
  callbacks.log = [&](const std::string& line) { log->line(line); };
  dist::ShardRunResult result;
  {
    dist::StopSignals::GracefulScope graceful(ctx.signals);
    result = dist::run_shards(ctx.comm, ctx.signals, pending, callbacks, ctx.is_root() ? &progress : nullptr, done_before,
                              ctx.describe);
  }
  if (result.preempted) {
    const std::int64_t done = static_cast<std::int64_t>(mine.size() - pending.size()) + result.published_total;
    log->line("stopped on request; " + std::to_string(result.published) + " shard(s) published by this rank");
    say(ctx, "%s: stopped on request (%s): %lld of %zu shards done in %s; run the same command again to finish",
        stage.command.c_str(), dist::signal_name(ctx.signals.signal_number()), static_cast<long long>(done), mine.size(),
        io::shards_folder(out_dir).c_str());
    throw dist::Preempted(stage.command + " stopped on request");
  }
  progress.finish();
  log->line("done: " + std::to_string(result.published) + " shard(s) published by this rank in this run");

  // 4. Merge (rank 0).
  if (!ctx.subset.all()) {
    say(ctx, "%s: the %zu shards of subset %s are done; once every subset is, run 'dualrs merge %s'",
        stage.command.c_str(), mine.size(), ctx.subset.text().c_str(), out_dir.c_str());
    return false;
  }
  ctx.on_root([&] {
    const io::MergeReport report = io::merge_shards(out_dir, stage.provenance.config_sha256, merge_derivations());
    if (report.up_to_date) {
      say(ctx, "%s: %s already holds these shards' results; not rewritten", stage.command.c_str(),
          report.outputs.front().c_str());
    }
    if (report.non_finite_examples > 0) {
      warn(ctx, "%s: %lld of %lld examples had non-finite logits (NaN/Inf) in %lld noisy copies; they abstain "
                "(radius 0). See the non_finite dataset of %s",
           stage.command.c_str(), static_cast<long long>(report.non_finite_examples),
           static_cast<long long>(report.examples), static_cast<long long>(report.non_finite_copies),
           report.outputs.front().c_str());
    }
  });
  return true;
}

}  // namespace dualrs::pipeline
