#include "dualrs/io/provenance.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <boost/version.hpp>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <vector>
#include <ctime>
#include <string>

#include "dualrs/build_info.h"
#include "dualrs/core/error.h"
#include "dualrs/io/hdf5_file.h"

namespace dualrs::io {
namespace {

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

/// World size from the launcher's environment. The app, which holds the communicator, should
/// overwrite it with the communicator's size; this is the best guess without MPI state.
int world_size_from_env() {
  // Open MPI's own variable first: under `mpirun` inside an allocation SLURM_NTASKS describes
  // the allocation, not this job.
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS"}) {
    const std::string v = env_or_empty(name);
    if (v.empty()) continue;
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (end != v.c_str() && *end == '\0' && n > 0) return static_cast<int>(n);
  }
  return 1;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

std::string boost_version() {
  std::string v = BOOST_LIB_VERSION;  // "1_74"
  for (char& c : v) {
    if (c == '_') c = '.';
  }
  return v;
}

}  // namespace

namespace {
std::string to_hex(const unsigned char* digest, unsigned int length) {
  static const char* const kHex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}
}  // namespace

std::string sha256_hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    DUALRS_THROW(Error, "OpenSSL EVP_Digest(SHA-256) failed");
  }
  return to_hex(digest, length);
}

std::string sha256_file_hex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) DUALRS_THROW(IoError, "cannot read '", path, "' to hash it");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) DUALRS_THROW(Error, "OpenSSL SHA-256 init failed");
  std::vector<char> buffer(1 << 20);  // streamed: model files can be gigabytes
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0 && EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<std::size_t>(in.gcount())) != 1) {
      DUALRS_THROW(Error, "OpenSSL SHA-256 update failed");
    }
  }
  if (in.bad()) DUALRS_THROW(IoError, "error while reading '", path, "' to hash it");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) DUALRS_THROW(Error, "OpenSSL SHA-256 final failed");
  return to_hex(digest, length);
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Provenance make_provenance(std::string schema, std::string command, const nlohmann::json& config,
                           std::uint64_t seed, int rng_layout_version) {
  Provenance p;
  p.schema = std::move(schema);
  p.schema_version = 1;
  p.command = std::move(command);
  p.config = config;
  p.config_sha256 = sha256_hex(config.dump());
  p.git_revision = DUALRS_GIT_REVISION;
  p.dualrs_version = DUALRS_VERSION;
  p.seed = seed;
  p.rng_layout_version = rng_layout_version;
  // Torch is not a dependency of this layer; the app appends "; torch X.Y.Z" itself.
  p.library_versions = "hdf5 " + hdf5_version() + "; boost " + boost_version() + "; nlohmann_json " +
                       std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." +
                       std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "." +
                       std::to_string(NLOHMANN_JSON_VERSION_PATCH) + "; " + OpenSSL_version(OPENSSL_VERSION);
  p.world_size = world_size_from_env();
  p.slurm_job_id = env_or_empty("SLURM_JOB_ID");
  p.hostname = host_name();
  p.created_utc = utc_now();
  return p;
}

nlohmann::json to_json(const Provenance& p) {
  nlohmann::json out{
      {"schema", p.schema},
      {"schema_version", p.schema_version},
      {"command", p.command},
      {"config", p.config},
      {"config_sha256", p.config_sha256},
      {"git_revision", p.git_revision},
      {"dualrs_version", p.dualrs_version},
      {"seed", p.seed},
      {"rng_layout_version", p.rng_layout_version},
      {"library_versions", p.library_versions},
      {"world_size", p.world_size},
      {"slurm_job_id", p.slurm_job_id},
      {"hostname", p.hostname},
      {"created_utc", p.created_utc},
      {"finished_utc", p.finished_utc},
  };
  if (!p.extra.empty()) out["extra"] = p.extra;
  return out;
}

void write_provenance_attributes(Hdf5File& f, const Provenance& p) {
  f.set_attr("/", "command", p.command);
  f.set_attr("/", "config", p.config.dump());
  f.set_attr("/", "config_sha256", p.config_sha256);
  f.set_attr("/", "git_revision", p.git_revision);
  f.set_attr("/", "dualrs_version", p.dualrs_version);
  f.set_attr("/", "seed", static_cast<std::uint64_t>(p.seed));
  f.set_attr("/", "rng_layout_version", static_cast<std::int64_t>(p.rng_layout_version));
  f.set_attr("/", "library_versions", p.library_versions);
  f.set_attr("/", "world_size", static_cast<std::int64_t>(p.world_size));
  f.set_attr("/", "slurm_job_id", p.slurm_job_id);
  f.set_attr("/", "hostname", p.hostname);
  f.set_attr("/", "created_utc", p.created_utc);
  f.set_attr("/", "finished_utc", p.finished_utc);
  for (const auto& [name, value] : p.extra.items()) {
    if (value.is_string()) f.set_attr("/", name, value.get<std::string>());
    else if (value.is_number_unsigned()) f.set_attr("/", name, value.get<std::uint64_t>());
    else if (value.is_number_integer()) f.set_attr("/", name, value.get<std::int64_t>());
    else if (value.is_number_float()) f.set_attr("/", name, value.get<double>());
    else DUALRS_THROW(IoError, "provenance attribute '", name, "' of '", f.path(), "' is not a string or number");
  }
}

void write_completion_mark(Hdf5File& f, const Provenance& p) {
  if (p.completion_mark) f.set_attr("/", "shard_complete", std::int64_t{1});
}

Provenance read_provenance_attributes(const Hdf5File& f) {
  Provenance p;
  p.schema = f.attr_string("/", "schema");
  p.schema_version = static_cast<int>(f.attr_int64("/", "schema_version"));
  p.command = f.attr_string("/", "command");
  const std::string config = f.attr_string("/", "config");
  p.config = nlohmann::json::parse(config, nullptr, false);
  if (p.config.is_discarded()) DUALRS_THROW(IoError, "'", f.path(), "': root attribute 'config' is not valid JSON");
  p.config_sha256 = f.attr_string("/", "config_sha256");
  p.git_revision = f.attr_string("/", "git_revision");
  p.dualrs_version = f.attr_string("/", "dualrs_version");
  p.seed = f.attr_uint64("/", "seed");
  p.rng_layout_version = static_cast<int>(f.attr_int64("/", "rng_layout_version"));
  p.library_versions = f.attr_string("/", "library_versions");
  p.world_size = static_cast<int>(f.attr_int64("/", "world_size"));
  p.slurm_job_id = f.attr_string("/", "slurm_job_id");
  p.hostname = f.attr_string("/", "hostname");
  p.created_utc = f.attr_string("/", "created_utc");
  p.finished_utc = f.attr_string("/", "finished_utc");
  return p;
}

}  // namespace dualrs::io
