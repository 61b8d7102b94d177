#include "dualrs/core/error.h"

#include <cstdlib>

namespace dualrs {
inline namespace core {
namespace {
std::string render(const std::string& source, const std::vector<ConfigIssue>& issues) {
  std::string out;
  for (std::size_t i = 0; i < issues.size(); ++i) {
    if (i > 0) out += '\n';
    out += "config error";
    if (!source.empty()) out += " in " + source;
    out += ": " + (issues[i].pointer.empty() ? std::string("(document)") : issues[i].pointer) + ": " +
           issues[i].message;
  }
  return out;
}
}  // namespace

ConfigError::ConfigError(std::string source, std::vector<ConfigIssue> issues)
    : Error(render(source, issues)), source_(std::move(source)), issues_(std::move(issues)) {}

ConfigError::ConfigError(std::string source, std::string pointer, std::string message)
    : ConfigError(std::move(source), std::vector<ConfigIssue>{{std::move(pointer), std::move(message)}}) {}

namespace detail {
std::string rank_tag() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"}) {
    if (const char* v = std::getenv(name)) return std::string("rank ") + v;
  }
  return {};
}
}  // namespace detail
}  // namespace core
}  // namespace dualrs
