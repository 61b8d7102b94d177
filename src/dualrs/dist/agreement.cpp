#include "dualrs/dist/agreement.h"

#include <algorithm>
#include <regex>

namespace dualrs::dist {

Failure describe_standard(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const AgreedFailure& e) {
    return {e.exit_code(), e.what()};
  } catch (const ConfigError& e) {
    return {2, e.what()};
  } catch (const Error& e) {
    return {1, std::string("error: ") + e.what()};
  } catch (const std::exception& e) {
    return {1, std::string("unexpected error: ") + e.what()};
  } catch (...) {
    return {1, "unexpected error (not a std::exception)"};
  }
}

AgreedFailure::AgreedFailure(int exit_code, std::vector<std::string> lines)
    : Error(lines.empty() ? std::string("failed on another rank") : lines.front()),
      exit_code_(exit_code),
      lines_(std::move(lines)) {}

std::string without_rank_tag(const std::string& message) {
  static const std::regex tag(R"(\[rank [0-9]+, )");
  return std::regex_replace(message, tag, "[");
}

namespace {

std::string rank_list(const std::vector<int>& ranks, int size) {
  if (static_cast<int>(ranks.size()) == size && size > 1) return " (all " + std::to_string(size) + " ranks)";
  std::string out = ranks.size() == 1 ? " (rank " : " (ranks ";
  for (std::size_t i = 0; i < ranks.size(); ++i) out += (i ? ", " : "") + std::to_string(ranks[i]);
  return out + ")";
}

}  // namespace

void agree_on_failures(Communicator& comm, std::exception_ptr local, const DescribeFn& describe) {
  Failure mine;
  if (local) mine = describe ? describe(local) : describe_standard(local);
  const std::int64_t code = local ? std::max(1, mine.exit_code) : 0;
  const std::int64_t worst = comm.all_reduce(code, ReduceOp::kMax);
  if (worst == 0) return;
  // Each failing rank's message; a rank that failed only because another did has nothing new.
  const std::vector<std::string> messages = comm.gather(local ? mine.message : std::string(), 0);
  std::vector<std::string> lines;
  if (comm.is_root()) {
    std::vector<std::pair<std::string, std::vector<int>>> distinct;
    for (std::size_t r = 0; r < messages.size(); ++r) {
      if (messages[r].empty()) continue;
      const std::string key = without_rank_tag(messages[r]);
      auto it = std::find_if(distinct.begin(), distinct.end(), [&](const auto& d) { return d.first == key; });
      if (it == distinct.end()) distinct.push_back({key, {static_cast<int>(r)}});
      else it->second.push_back(static_cast<int>(r));
    }
    for (const auto& [text, ranks] : distinct) {
      const bool only_root = ranks.size() == 1 && ranks.front() == 0;
      lines.push_back(comm.size() == 1 || only_root ? text : text + rank_list(ranks, comm.size()));
    }
  }
  throw AgreedFailure(static_cast<int>(worst), std::move(lines));
}

}  // namespace dualrs::dist
