#pragma once
/// \file
/// The dualrs error hierarchy (docs/style.md §3): one base type, subclasses by cause.
/// Messages read "<what went wrong> [rank R, file.cpp:LINE]" so a log line names its origin.
///
/// Namespaces: one per layer, `dualrs::<layer>` (dualrs::core, dualrs::rng, dualrs::data,
/// dualrs::model, dualrs::smooth, dualrs::dist, dualrs::train, dualrs::io, dualrs::report,
/// dualrs::pipeline), matching src/dualrs/<layer>/ and the CMake target dualrs::<layer>.
/// core and rng are inline namespaces (`namespace dualrs { inline namespace core { ... } }`):
/// dualrs::core::Error is the canonical name and dualrs::Error reaches the same entity, as
/// dualrs::core::stats::norm_ppf and dualrs::stats::norm_ppf do. Layer-private helpers go in
/// dualrs::<layer>::detail; name core's as dualrs::core::detail (not dualrs::detail), since
/// more than one inline layer may have a detail namespace.

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dualrs {
inline namespace core {

/// Base of every error dualrs throws on purpose.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One problem in a configuration: the JSON pointer of the offending key (e.g.
/// `/certify/sigma`, or "" for the document) and what was expected.
struct ConfigIssue {
  std::string pointer;
  std::string message;
};

/// A configuration (file, command-line flag or job manifest) is invalid. Carries every issue
/// found, so all problems are reported together before any work starts.
class ConfigError : public Error {
 public:
  /// \param source  the file (or "command line") the issues come from; may be empty.
  ConfigError(std::string source, std::vector<ConfigIssue> issues);
  /// Single-issue shorthand.
  ConfigError(std::string source, std::string pointer, std::string message);
  const std::string& source() const { return source_; }
  const std::vector<ConfigIssue>& issues() const { return issues_; }

 private:
  std::string source_;
  std::vector<ConfigIssue> issues_;
};

/// Input data is missing, malformed or out of range (bad IDX magic, NaN pixels, ...).
class DataError : public Error {
 public:
  using Error::Error;
};

/// A file could not be read or written (path and HDF5 object named in the message).
class IoError : public Error {
 public:
  using Error::Error;
};

/// A model could not be loaded or violates its contract (e.g. output not `[B, K]`).
class ModelError : public Error {
 public:
  using Error::Error;
};

/// A collective or communicator failed (MPI, NCCL).
class CommError : public Error {
 public:
  using Error::Error;
};

namespace detail {
/// "rank R" taken from the launcher's environment (Open MPI, PMIx, Slurm), "" outside MPI.
/// Reads environment variables only, so it needs no MPI state.
std::string rank_tag();

template <typename... Args>
std::string format_error(const char* file, int line, Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  const char* base = file;
  for (const char* p = file; *p != '\0'; ++p) {
    if (*p == '/') base = p + 1;
  }
  os << " [";
  const std::string rank = rank_tag();
  if (!rank.empty()) os << rank << ", ";
  os << base << ':' << line << ']';
  return os.str();
}
}  // namespace detail

}  // namespace core
}  // namespace dualrs

/// Throws `Type` with the streamed arguments as its message, tagged with rank and file:line.
/// Not for ConfigError (use dualrs::ConfigError's constructors, which carry JSON pointers).
#define DUALRS_THROW(Type, ...) throw Type(::dualrs::core::detail::format_error(__FILE__, __LINE__, __VA_ARGS__))

/// Always-on check: throws `Type` with the message when `cond` is false. Never compiled out.
#define DUALRS_CHECK(cond, Type, ...) \
  do {                                \
    if (!(cond)) DUALRS_THROW(Type, __VA_ARGS__); \
  } while (false)
