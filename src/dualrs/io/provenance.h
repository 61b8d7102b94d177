#pragma once
/// \file
/// Provenance of every output file (docs/architecture.md §10): what made it, from what
/// configuration, with which seeds and libraries, when and where.

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace dualrs::io {

class Hdf5File;

struct Provenance {
  std::string schema;                 ///< e.g. "dualrs.certify"
  int schema_version = 1;
  std::string command;                ///< subcommand that wrote the file, e.g. "certify"
  nlohmann::json config;              ///< resolved config (defaults filled in)
  std::string config_sha256;          ///< SHA-256 of config.dump() (hex)
  std::string git_revision;           ///< of the dualrs build
  std::string dualrs_version;
  std::uint64_t seed = 0;
  int rng_layout_version = 0;
  std::string library_versions;       ///< "torch 1.13.0; hdf5 1.10.8; boost 1.74; ..."
  int world_size = 1;
  std::string slurm_job_id;           ///< $SLURM_JOB_ID or ""
  std::string hostname;
  std::string created_utc;            ///< ISO 8601, e.g. "2026-11-21T12:00:00Z"
  std::string finished_utc;
  /// Further root attributes, name -> string / integer / float value: the shard fields of a
  /// shard file and the merge fields of a merged file (data_schemas/shards.md).
  nlohmann::json extra = nlohmann::json::object();
  /// Shard files: write the root attribute `shard_complete` = 1 after everything else
  /// (write_completion_mark), so a file without it was not written to the end.
  bool completion_mark = false;
};

/// Fills the build/environment fields (git revision, versions, Slurm ids, host, created
/// time) and the config with its SHA-256 (of `config.dump()`). `library_versions` lists HDF5,
/// Boost, nlohmann_json and OpenSSL; this layer does not link Torch, so the app appends
/// "; torch X.Y.Z". `world_size` is read from $OMPI_COMM_WORLD_SIZE / $SLURM_NTASKS (else 1);
/// the app should overwrite it with its communicator's size. `finished_utc` is left empty.
/// \throws dualrs::Error when OpenSSL fails.
Provenance make_provenance(std::string schema, std::string command, const nlohmann::json& config,
                           std::uint64_t seed, int rng_layout_version);

/// Lower-case hex SHA-256 of `bytes` (OpenSSL EVP), 64 characters. \throws dualrs::Error.
std::string sha256_hex(const std::string& bytes);
/// SHA-256 (hex) of a file's bytes, read in 1 MiB blocks. \throws IoError when unreadable.
std::string sha256_file_hex(const std::string& path);

/// Current UTC time, ISO 8601 with seconds ("2026-11-21T12:00:00Z").
std::string utc_now();

/// Writes every field as a root attribute of `file` (`config` as JSON text), the layout
/// shared by all dualrs HDF5 outputs. \throws IoError.
void write_provenance_attributes(Hdf5File& file, const Provenance& p);

/// All provenance fields as one JSON object (for sidecars and logs).
nlohmann::json to_json(const Provenance& p);

/// Writes `shard_complete` = 1 when `p.completion_mark` is set; writers call it last, just
/// before closing the file. \throws IoError.
void write_completion_mark(Hdf5File& file, const Provenance& p);

/// Reads the provenance attributes written by write_provenance_attributes (`extra` stays
/// empty). \throws IoError naming the file and attribute when one is missing or mistyped.
Provenance read_provenance_attributes(const Hdf5File& file);

}  // namespace dualrs::io
