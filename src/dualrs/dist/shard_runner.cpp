#include "dualrs/dist/shard_runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

namespace dualrs::dist {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string shard_text(const Shard& s) {
  return "shard " + std::to_string(s.index) + " [" + std::to_string(s.begin) + ", " + std::to_string(s.end) + ")";
}

/// One rank's side of run_shards.
class RankRun {
 public:
  RankRun(Communicator& comm, const StopToken& stop, const ShardCallbacks& work, ProgressMeter* progress,
          std::int64_t done_before, const ShardRunOptions& options)
      : comm_(comm),
        stop_(stop),
        work_(work),
        progress_(comm.is_root() ? progress : nullptr),
        done_before_(done_before),
        options_(options),
        others_done_(static_cast<std::size_t>(comm.size()), 0) {}

  void run(const std::vector<Shard>& mine) {
    for (std::size_t i = 0; i < mine.size(); ++i) {
      if (must_stop()) {
        abandoned_ += static_cast<std::int64_t>(mine.size() - i);
        log("stopping before " + shard_text(mine[i]) + "; " + std::to_string(mine.size() - i) + " shard(s) left undone");
        break;
      }
      if (!run_shard(mine[i])) {
        abandoned_ += static_cast<std::int64_t>(mine.size() - i);
        break;
      }
    }
    finish();
  }

  ShardRunResult close(const DescribeFn& describe) {
    // The one collective of the run: every rank has finished or stopped by now.
    std::int64_t totals[3] = {abandoned_, posted_stop_ ? 1 : 0, published_};
    comm_.all_reduce(totals, 3, ReduceOp::kSum);
    // Drain the stop notices still addressed to this rank, so none is left in flight.
    const std::int64_t expected_stops = totals[1] - (posted_stop_ ? 1 : 0);
    for (auto pause = std::chrono::microseconds(50); stops_received_ < expected_stops;) {
      if (!handle_one_notice()) {
        std::this_thread::sleep_for(pause);
        pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10));
      }
    }
    comm_.complete_posts();
    agree_on_failures(comm_, failure_, describe);
    ShardRunResult result;
    result.published = published_;
    result.published_total = totals[2];
    result.abandoned_total = totals[0];
    result.preempted = totals[0] > 0;
    return result;
  }

 private:
  /// Computes and publishes one shard; false when stopped or failed midway.
  bool run_shard(const Shard& shard) {
    const auto start = Clock::now();
    try {
      for (std::int64_t position = shard.begin; position < shard.end; ++position) {
        if (position > shard.begin && must_stop()) {
          work_.discard(shard);
          log("stopped in " + shard_text(shard) + " after " + std::to_string(position - shard.begin) +
              " example(s); its partial results are discarded");
          return false;
        }
        work_.compute(position);
        ++done_;
        report_progress(false);
      }
      work_.publish(shard);
    } catch (const StopInExample&) {
      work_.discard(shard);
      if (!stop_seen_) log("stop requested by signal");
      stop_seen_ = true;
      announce_stop();
      log("stopped in " + shard_text(shard) + " inside an example, between two batches; its partial results are discarded");
      return false;
    } catch (...) {
      failure_ = std::current_exception();
      try {
        work_.discard(shard);
      } catch (...) {  // the first failure is the one to report
      }
      log("failed in " + shard_text(shard) + "; stopping the other ranks");
      announce_stop();
      return false;
    }
    ++published_;
    char line[160];
    std::snprintf(line, sizeof line, "%s: %lld example(s) in %.2f s, published", shard_text(shard).c_str(),
                  static_cast<long long>(shard.size()), seconds_since(start));
    log(line);
    return true;
  }

  bool must_stop() {
    while (handle_one_notice()) {
    }
    if (!stop_seen_ && stop_.stop_requested()) {
      stop_seen_ = true;
      log("stop requested by signal");
      announce_stop();
    }
    return stop_seen_ || failure_ != nullptr;
  }

  /// Handles one arrived notice; false when none had arrived.
  bool handle_one_notice() {
    const std::optional<Notice> notice = comm_.poll();
    if (!notice) return false;
    switch (notice->kind) {
      case NoticeKind::kStop:
        ++stops_received_;
        if (!stop_seen_) log("stop requested by rank " + std::to_string(notice->source));
        stop_seen_ = true;
        break;
      case NoticeKind::kProgress:
        others_done_[static_cast<std::size_t>(notice->source)] = notice->value;
        break;
      case NoticeKind::kDone:
        others_done_[static_cast<std::size_t>(notice->source)] = notice->value;
        ++ranks_done_;
        break;
      case NoticeKind::kRelease:
        released_ = true;
        break;
    }
    return true;
  }

  /// A stop signal of this rank, seen while it has no work left, still stops the others.
  void pass_on_own_stop() {
    if (!stop_seen_ && stop_.stop_requested()) {
      stop_seen_ = true;
      log("stop requested by signal (no work left here)");
      announce_stop();
    }
  }

  void announce_stop() {
    if (posted_stop_) return;
    posted_stop_ = true;
    for (int r = 0; r < comm_.size(); ++r) {
      if (r != comm_.rank()) comm_.post(r, NoticeKind::kStop, 0);
    }
  }

  void report_progress(bool final) {
    if (progress_ != nullptr) {
      std::int64_t total = done_before_ + done_;
      for (std::int64_t d : others_done_) total += d;
      progress_->update(total);
      return;
    }
    if (comm_.is_root()) return;
    if (!final && seconds_since(last_post_) < options_.progress_interval_s) return;
    last_post_ = Clock::now();
    comm_.post(0, final ? NoticeKind::kDone : NoticeKind::kProgress, done_);
  }

  /// After this rank's last shard: tell rank 0 and wait for its release, or (rank 0) wait
  /// for everyone's kDone and release them.
  void finish() {
    if (!comm_.is_root()) report_progress(true);
    const auto waiting = [&] { return comm_.is_root() ? ranks_done_ < comm_.size() - 1 : !released_; };
    for (auto pause = std::chrono::microseconds(100); waiting();) {
      pass_on_own_stop();
      if (handle_one_notice()) {
        if (comm_.is_root()) report_progress(false);  // the others post nothing after kDone
        pause = std::chrono::microseconds(100);
        continue;
      }
      std::this_thread::sleep_for(pause);
      pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(50));
    }
    if (!comm_.is_root()) return;
    for (int r = 1; r < comm_.size(); ++r) comm_.post(r, NoticeKind::kRelease, 0);
    report_progress(false);
  }

  void log(const std::string& line) {
    if (work_.log) work_.log(line);
  }

  Communicator& comm_;
  const StopToken& stop_;
  const ShardCallbacks& work_;
  ProgressMeter* progress_;
  std::int64_t done_before_;
  ShardRunOptions options_;
  std::vector<std::int64_t> others_done_;  // rank 0: examples each rank reported
  int ranks_done_ = 0;                     // rank 0: kDone notices received
  bool released_ = false;                  // other ranks: kRelease received
  std::int64_t done_ = 0;                  // examples this rank computed in this run
  std::int64_t published_ = 0;
  std::int64_t abandoned_ = 0;
  std::int64_t stops_received_ = 0;
  bool stop_seen_ = false;
  bool posted_stop_ = false;
  std::exception_ptr failure_;
  Clock::time_point last_post_ = Clock::now();
};

}  // namespace

std::vector<Shard> assign_shards(const std::vector<Shard>& pending, int rank, int size) {
  std::vector<Shard> mine;
  for (std::size_t i = static_cast<std::size_t>(rank); i < pending.size(); i += static_cast<std::size_t>(size)) {
    mine.push_back(pending[i]);
  }
  return mine;
}

ShardRunResult run_shards(Communicator& comm, const StopToken& stop, const std::vector<Shard>& pending,
                          const ShardCallbacks& work, ProgressMeter* progress, std::int64_t done_before,
                          const DescribeFn& describe, const ShardRunOptions& options) {
  RankRun run(comm, stop, work, progress, done_before, options);
  run.run(assign_shards(pending, comm.rank(), comm.size()));
  return run.close(describe);
}

}  // namespace dualrs::dist
