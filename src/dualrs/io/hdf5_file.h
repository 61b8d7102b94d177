#pragma once
/// \file
/// A small RAII wrapper over the serial HDF5 C API (docs/cluster.md §4): handles close
/// themselves, HDF5's automatic error printing is off, and every failure becomes an IoError
/// naming the file and the object. Only this layer includes <hdf5.h>.

#include <cstdint>
#include <string>
#include <vector>

namespace dualrs::io {

/// Owns one HDF5 identifier (file, group, dataset, ...) and closes it.
class Hdf5Handle {
 public:
  Hdf5Handle() = default;
  Hdf5Handle(std::int64_t id, int (*closer)(std::int64_t)) : id_(id), closer_(closer) {}
  Hdf5Handle(const Hdf5Handle&) = delete;
  Hdf5Handle& operator=(const Hdf5Handle&) = delete;
  Hdf5Handle(Hdf5Handle&& other) noexcept;
  Hdf5Handle& operator=(Hdf5Handle&& other) noexcept;
  ~Hdf5Handle();
  std::int64_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  /// Gives up ownership without closing (for callers that must check the close result).
  std::int64_t release() noexcept;

 private:
  std::int64_t id_ = -1;
  int (*closer_)(std::int64_t) = nullptr;
};

/// kCreateTruncate: a new file at `path`, replacing whatever is there. It is built in memory
/// and written out by close(), into a file created exclusively when the Hdf5File is
/// constructed (create_temporary in atomic_file.h: a planted link is never followed). HDF5
/// itself never writes to the disk, so a full disk or a quota fails in close() with a plain
/// IoError and no HDF5 state is left half closed. Meant for the `.tmp` of atomic publication.
enum class FileMode { kCreateTruncate, kReadOnly };

/// An open HDF5 file. Datasets are 1-D or 2-D, example axis first, chunked (~1 MB),
/// fletcher32-checksummed; integer datasets are also shuffled + deflated.
class Hdf5File {
 public:
  /// \throws IoError (missing file, not HDF5, permission) naming `path`.
  Hdf5File(const std::string& path, FileMode mode);
  ~Hdf5File();
  Hdf5File(const Hdf5File&) = delete;
  Hdf5File& operator=(const Hdf5File&) = delete;

  const std::string& path() const { return path_; }
  /// Closes now; a created file is written to `path`, fsync'ed and closed here, so this is
  /// where a full disk is reported. The destructor closes too, without throwing (errors are
  /// lost; while an exception unwinds a created file is left empty): publish only after
  /// close() returned.
  /// \throws IoError naming the path and the system's reason.
  void close();

  // Writing. `name` may contain '/' (groups are created). dims = {rows} or {rows, cols}.
  void write_int64(const std::string& name, const std::vector<std::int64_t>& data, const std::vector<std::uint64_t>& dims);
  void write_int32(const std::string& name, const std::vector<std::int32_t>& data, const std::vector<std::uint64_t>& dims);
  void write_int8(const std::string& name, const std::vector<std::int8_t>& data, const std::vector<std::uint64_t>& dims);
  void write_float64(const std::string& name, const std::vector<double>& data, const std::vector<std::uint64_t>& dims);
  void write_float32(const std::string& name, const std::vector<float>& data, const std::vector<std::uint64_t>& dims);
  /// Attributes on the object at `object` ("/" for the root). Strings are variable-length UTF-8.
  void set_attr(const std::string& object, const std::string& name, const std::string& value);
  void set_attr(const std::string& object, const std::string& name, double value);
  void set_attr(const std::string& object, const std::string& name, std::int64_t value);
  /// Stored as uint64 (e.g. RNG seeds, which use the full 64-bit range).
  void set_attr(const std::string& object, const std::string& name, std::uint64_t value);
  void set_attr(const std::string& object, const std::string& name, const std::vector<double>& values);

  // Reading. \throws IoError naming file and object when missing or of another type/rank.
  bool exists(const std::string& name) const;
  std::vector<std::uint64_t> dims(const std::string& name) const;
  std::vector<std::int64_t> read_int64(const std::string& name) const;  ///< any integer type, converted
  std::vector<double> read_float64(const std::string& name) const;      ///< any float type, converted
  bool has_attr(const std::string& object, const std::string& name) const;
  std::string attr_string(const std::string& object, const std::string& name) const;
  double attr_double(const std::string& object, const std::string& name) const;
  std::int64_t attr_int64(const std::string& object, const std::string& name) const;
  /// Any unsigned integer attribute, or a signed one that is >= 0.
  std::uint64_t attr_uint64(const std::string& object, const std::string& name) const;
  std::vector<double> attr_doubles(const std::string& object, const std::string& name) const;

  // Inspection (layout checks, generic readers).
  /// Names of the links in `group` ("/" for the root), sorted by name.
  std::vector<std::string> list(const std::string& group) const;
  /// Names of the attributes of `object`, sorted by name.
  std::vector<std::string> attr_names(const std::string& object) const;
  /// The stored element type in numpy words: "int8".."int64", "uint8".."uint64",
  /// "float32", "float64", "string", or "other".
  std::string dtype(const std::string& name) const;
  /// Same as dtype() for the attribute `name` of `object`.
  std::string attr_dtype(const std::string& object, const std::string& name) const;

 private:
  std::string path_;
  Hdf5Handle file_;
  int fd_ = -1;  ///< the created file, written by close(); -1 when reading
  int exceptions_at_creation_ = 0;  ///< std::uncaught_exceptions() when the file was created
};

/// The HDF5 library version in use at run time, e.g. "1.10.8" (for provenance).
std::string hdf5_version();

}  // namespace dualrs::io
