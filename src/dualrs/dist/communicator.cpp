#include "dualrs/dist/communicator.h"

#include <cstdio>
#include <cstdlib>

#include "dualrs/core/error.h"

namespace dualrs::dist {

bool Communicator::all_agree(bool ok) { return all_reduce(std::int64_t{ok ? 1 : 0}, ReduceOp::kMin) == 1; }

bool Communicator::any_of(bool flag) { return all_reduce(std::int64_t{flag ? 1 : 0}, ReduceOp::kMax) == 1; }

std::int64_t Communicator::all_reduce(std::int64_t value, ReduceOp op) {
  all_reduce(&value, 1, op);
  return value;
}

void Communicator::broadcast(std::string& text, int root) {
  std::int64_t length = static_cast<std::int64_t>(text.size());
  broadcast(&length, sizeof length, root);
  text.resize(static_cast<std::size_t>(length));
  if (length > 0) broadcast(text.data(), text.size(), root);
}

void Communicator::broadcast(std::vector<std::int64_t>& values, int root) {
  std::int64_t length = static_cast<std::int64_t>(values.size());
  broadcast(&length, sizeof length, root);
  values.resize(static_cast<std::size_t>(length));
  if (length > 0) broadcast(values.data(), values.size() * sizeof(std::int64_t), root);
}

// --- SingleProcessCommunicator --------------------------------------------------------------

namespace {
void check_root(int root) {
  DUALRS_CHECK(root == 0, CommError, "rank ", root, " does not exist in a single-process job");
}
}  // namespace

void SingleProcessCommunicator::broadcast(void*, std::size_t, int root) { check_root(root); }

std::vector<std::int64_t> SingleProcessCommunicator::gather(std::int64_t value, int root) {
  check_root(root);
  return {value};
}

std::vector<double> SingleProcessCommunicator::gather(double value, int root) {
  check_root(root);
  return {value};
}

std::vector<std::string> SingleProcessCommunicator::gather(const std::string& text, int root) {
  check_root(root);
  return {text};
}

void SingleProcessCommunicator::post(int dest, NoticeKind kind, std::int64_t value) {
  check_root(dest);
  inbox_.push_back({0, kind, value});
}

std::optional<Notice> SingleProcessCommunicator::poll() {
  if (next_ == inbox_.size()) {
    inbox_.clear();
    next_ = 0;
    return std::nullopt;
  }
  return inbox_[next_++];
}

void SingleProcessCommunicator::abort(int exit_code, const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  std::_Exit(exit_code);
}

}  // namespace dualrs::dist
