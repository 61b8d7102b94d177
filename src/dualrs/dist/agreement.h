#pragma once
/// \file
/// Agreed errors (docs/style.md §4; docs/cluster.md §2): a rank never throws while the others
/// wait in a collective. Each phase of a command runs on every rank, catches what it throws,
/// and the ranks agree at the phase boundary; if any rank failed, every rank then throws
/// AgreedFailure, and rank 0 reports each distinct message once, naming the ranks it came from.

#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "dualrs/core/error.h"
#include "dualrs/dist/communicator.h"

namespace dualrs::dist {

/// How one exception reads and the exit code it maps to.
struct Failure {
  int exit_code = 1;
  std::string message;  ///< one or more lines, e.g. "error: cannot open x [file.cpp:12]"
};

/// Maps an exception to a Failure. The executable supplies one that also knows Torch's
/// errors; describe_standard covers dualrs::Error and std::exception.
using DescribeFn = std::function<Failure(std::exception_ptr)>;

/// ConfigError → exit 2, its text; other dualrs::Error → 1, "error: <text>"; any other
/// std::exception → 1, "unexpected error: <text>".
Failure describe_standard(std::exception_ptr error);

/// Thrown on every rank after a phase failed on at least one rank.
class AgreedFailure : public Error {
 public:
  AgreedFailure(int exit_code, std::vector<std::string> lines);
  /// The largest exit code of the failing ranks.
  int exit_code() const { return exit_code_; }
  /// What to print, one line each (rank 0 only; empty on the other ranks): each distinct
  /// message once, followed by " (rank R)" / " (ranks A, B)" when ranks other than 0 failed.
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  int exit_code_;
  std::vector<std::string> lines_;
};

/// Collective: every rank passes its own outcome (`local` = nullptr when it succeeded).
/// Returns when every rank succeeded; otherwise gathers the failures on rank 0 and throws
/// AgreedFailure on every rank.
void agree_on_failures(Communicator& comm, std::exception_ptr local, const DescribeFn& describe);

/// Runs `phase` on this rank and agrees on the outcome (see agree_on_failures). An
/// AgreedFailure from inside `phase` (a nested agreement, e.g. a training step) is already
/// agreed and thrown on every rank, so it passes through unchanged on every rank.
template <typename Fn>
void agreed(Communicator& comm, const DescribeFn& describe, Fn&& phase) {
  std::exception_ptr local;
  try {
    phase();
  } catch (const AgreedFailure&) {
    throw;
  } catch (...) {
    local = std::current_exception();
  }
  agree_on_failures(comm, local, describe);
}

/// Runs `work` on rank 0 only while the other ranks wait (politely), then agrees.
template <typename Fn>
void on_root(Communicator& comm, const DescribeFn& describe, Fn&& work) {
  agreed(comm, describe, [&] {
    if (comm.is_root()) work();
  });
}

/// The text of a message with the "rank R, " of its "[rank R, file:line]" tag removed, so
/// that the same error on several ranks reads the same.
std::string without_rank_tag(const std::string& message);

}  // namespace dualrs::dist
