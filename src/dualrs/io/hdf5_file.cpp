#include "dualrs/io/hdf5_file.h"

#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <limits>
#include <type_traits>

#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"

// Hdf5Handle stores closers as int(*)(int64_t) so the header need not include <hdf5.h>.
static_assert(std::is_same_v<hid_t, std::int64_t>, "HDF5 >= 1.10 is required (64-bit hid_t)");
static_assert(std::is_same_v<herr_t, int>, "herr_t must be int");
static_assert(sizeof(hsize_t) == sizeof(std::uint64_t), "dims are passed as uint64");

namespace dualrs::io {
namespace {

/// Turns off HDF5's automatic printing of its error stack, once per process: failures are
/// reported as IoError instead (docs/style.md §3).
void silence_hdf5() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

herr_t innermost_error(unsigned n, const H5E_error2_t* err, void* data) {
  if (n == 0 && err != nullptr && err->desc != nullptr) {
    *static_cast<std::string*>(data) = err->desc;
  }
  return 1;  // the innermost entry is enough
}

/// ": <HDF5's description of the innermost error>" or "" when the stack is empty. Must run
/// right after the failing call (the next API call clears the stack).
std::string hdf5_reason() {
  std::string desc;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, &desc);
  H5Eclear2(H5E_DEFAULT);
  if (desc.empty()) return {};
  // A failed system call is described with its time, descriptor and buffer address; the
  // system's own message is what a user can act on.
  const std::string marker = "error message = '";
  if (const std::size_t at = desc.find(marker); at != std::string::npos) {
    const std::size_t end = desc.find('\'', at + marker.size());
    if (end != std::string::npos) return ": " + desc.substr(at + marker.size(), end - at - marker.size());
  }
  constexpr std::size_t kMaxReason = 240;
  if (desc.size() > kMaxReason) desc = desc.substr(0, kMaxReason) + "...";
  return " (HDF5: " + desc + ")";
}

}  // namespace
}  // namespace dualrs::io

/// Throws IoError with the streamed message followed by HDF5's own reason.
#define DUALRS_H5_THROW(...) DUALRS_THROW(::dualrs::IoError, __VA_ARGS__, ::dualrs::io::hdf5_reason())

namespace dualrs::io {
namespace {

Hdf5Handle own(hid_t id, herr_t (*closer)(hid_t)) { return Hdf5Handle(id, closer); }

std::string display_object(const std::string& name) { return name.empty() ? std::string("/") : name; }

std::string type_name(hid_t type) {
  const std::size_t bits = 8 * H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return (H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_FLOAT:
      return "float" + std::to_string(bits);
    case H5T_STRING:
      return "string";
    default:
      return "other";
  }
}

/// Checks dims against the number of values and returns the total element count.
std::uint64_t checked_count(const std::string& path, const std::string& name, std::size_t values,
                            const std::vector<std::uint64_t>& dims) {
  if (dims.size() != 1 && dims.size() != 2) {
    DUALRS_THROW(IoError, "dataset '", name, "' in HDF5 file '", path, "': expected 1 or 2 dims, got ",
                 dims.size());
  }
  std::uint64_t count = 1;
  for (std::uint64_t d : dims) count *= d;
  if (count != values) {
    DUALRS_THROW(IoError, "dataset '", name, "' in HDF5 file '", path, "': dims hold ", count,
                 " values but ", values, " were given");
  }
  return count;
}

constexpr std::uint64_t kChunkBytes = 1u << 20;  // ~1 MB chunks (docs/cluster.md §4)

void write_dataset(hid_t file, const std::string& path, const std::string& name, const void* data,
                   std::size_t values, const std::vector<std::uint64_t>& dims, hid_t file_type, hid_t mem_type,
                   bool integer) {
  const std::uint64_t count = checked_count(path, name, values, dims);
  const int rank = static_cast<int>(dims.size());

  // Chunks of whole rows, about 1 MB, at least one row. A zero-sized axis is unlimited so
  // that the chunk (which must be >= 1 along every axis) fits within the maximum dims.
  hsize_t cur[2] = {0, 0};
  hsize_t max[2] = {0, 0};
  hsize_t chunk[2] = {1, 1};
  for (int i = 0; i < rank; ++i) {
    cur[i] = dims[i];
    max[i] = dims[i] == 0 ? H5S_UNLIMITED : dims[i];
  }
  const std::uint64_t cols = rank == 2 ? std::max<std::uint64_t>(1, dims[1]) : 1;
  if (rank == 2) chunk[1] = cols;
  const std::uint64_t row_bytes = cols * H5Tget_size(file_type);
  chunk[0] = std::max<std::uint64_t>(1, std::min<std::uint64_t>(dims[0], kChunkBytes / row_bytes));

  Hdf5Handle space = own(H5Screate_simple(rank, cur, max), H5Sclose);
  if (!space.valid()) DUALRS_H5_THROW("cannot create dataspace for '", name, "' in HDF5 file '", path, "'");
  Hdf5Handle dcpl = own(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!dcpl.valid() || H5Pset_chunk(dcpl.id(), rank, chunk) < 0 ||
      (integer && (H5Pset_shuffle(dcpl.id()) < 0 || H5Pset_deflate(dcpl.id(), 4) < 0)) ||
      H5Pset_fletcher32(dcpl.id()) < 0 || H5Pset_obj_track_times(dcpl.id(), false) < 0) {
    DUALRS_H5_THROW("cannot set up chunking/filters for dataset '", name, "' in HDF5 file '", path, "'");
  }
  Hdf5Handle lcpl = own(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  if (!lcpl.valid() || H5Pset_create_intermediate_group(lcpl.id(), 1) < 0 ||
      H5Pset_char_encoding(lcpl.id(), H5T_CSET_UTF8) < 0) {
    DUALRS_H5_THROW("cannot set up link creation for dataset '", name, "' in HDF5 file '", path, "'");
  }
  Hdf5Handle dset = own(H5Dcreate2(file, name.c_str(), file_type, space.id(), lcpl.id(), dcpl.id(), H5P_DEFAULT),
                        H5Dclose);
  if (!dset.valid()) DUALRS_H5_THROW("cannot create dataset '", name, "' in HDF5 file '", path, "'");
  if (count > 0 && H5Dwrite(dset.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    DUALRS_H5_THROW("cannot write dataset '", name, "' in HDF5 file '", path, "'");
  }
}

/// Opens a dataset and checks that its type class is `wanted`; returns it and its point count.
Hdf5Handle open_dataset(hid_t file, const std::string& path, const std::string& name, H5T_class_t wanted,
                        const char* wanted_text, std::uint64_t* count) {
  Hdf5Handle dset = own(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!dset.valid()) DUALRS_H5_THROW("cannot open dataset '", name, "' in HDF5 file '", path, "'");
  Hdf5Handle type = own(H5Dget_type(dset.id()), H5Tclose);
  if (!type.valid()) DUALRS_H5_THROW("cannot get the type of dataset '", name, "' in HDF5 file '", path, "'");
  if (H5Tget_class(type.id()) != wanted) {
    DUALRS_THROW(IoError, "dataset '", name, "' in HDF5 file '", path, "' has type ", type_name(type.id()),
                 ", expected ", wanted_text);
  }
  Hdf5Handle space = own(H5Dget_space(dset.id()), H5Sclose);
  const hssize_t n = space.valid() ? H5Sget_simple_extent_npoints(space.id()) : -1;
  if (n < 0) DUALRS_H5_THROW("cannot get the shape of dataset '", name, "' in HDF5 file '", path, "'");
  *count = static_cast<std::uint64_t>(n);
  return dset;
}

template <typename T>
std::vector<T> read_dataset(hid_t file, const std::string& path, const std::string& name, H5T_class_t wanted,
                            const char* wanted_text, hid_t mem_type) {
  std::uint64_t count = 0;
  Hdf5Handle dset = open_dataset(file, path, name, wanted, wanted_text, &count);
  std::vector<T> out(count);
  if (count > 0 && H5Dread(dset.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
    DUALRS_H5_THROW("cannot read dataset '", name, "' in HDF5 file '", path, "'");
  }
  return out;
}

}  // namespace

// --- Hdf5Handle ----------------------------------------------------------------------------

Hdf5Handle::Hdf5Handle(Hdf5Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) {
  other.id_ = -1;
  other.closer_ = nullptr;
}

Hdf5Handle& Hdf5Handle::operator=(Hdf5Handle&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0 && closer_ != nullptr) closer_(id_);
    id_ = other.id_;
    closer_ = other.closer_;
    other.id_ = -1;
    other.closer_ = nullptr;
  }
  return *this;
}

Hdf5Handle::~Hdf5Handle() {
  if (id_ >= 0 && closer_ != nullptr) closer_(id_);
}

std::int64_t Hdf5Handle::release() noexcept {
  const std::int64_t id = id_;
  id_ = -1;
  closer_ = nullptr;
  return id;
}

// --- Hdf5File ------------------------------------------------------------------------------

/// Memory the in-memory (core) driver adds at a time as a created file grows.
constexpr std::size_t kCoreIncrement = 1u << 20;

Hdf5File::Hdf5File(const std::string& path, FileMode mode) : path_(path) {
  silence_hdf5();
  if (mode == FileMode::kCreateTruncate) {
    exceptions_at_creation_ = std::uncaught_exceptions();
    fd_ = create_temporary(path);
    Hdf5Handle fapl = own(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    if (fapl.valid() && H5Pset_fapl_core(fapl.id(), kCoreIncrement, 0) >= 0) {
      file_ = own(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()), H5Fclose);
    }
    if (!file_.valid()) {
      const std::string reason = hdf5_reason();
      ::close(fd_);
      fd_ = -1;
      DUALRS_THROW(IoError, "cannot create HDF5 file '", path, "'", reason);
    }
    return;
  }
  // Name the common causes plainly before HDF5's own (long) description.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    DUALRS_THROW(IoError, "cannot open HDF5 file '", path, "': ", std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) DUALRS_THROW(IoError, "cannot open HDF5 file '", path, "': it is a directory");
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 == 0) DUALRS_THROW(IoError, "'", path, "' is not an HDF5 file");
  if (is_hdf5 < 0) DUALRS_H5_THROW("cannot open HDF5 file '", path, "'");
  file_ = own(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file_.valid()) DUALRS_H5_THROW("cannot open HDF5 file '", path, "'");
}

Hdf5File::~Hdf5File() {
  if (fd_ < 0) return;  // file_ closes itself without throwing
  // Leaving scope normally finishes a created file, as closing a disk file would; while an
  // exception unwinds, the half-built file is dropped unwritten (its writer removes the .tmp).
  if (std::uncaught_exceptions() <= exceptions_at_creation_) {
    try {
      close();
    } catch (const std::exception&) {  // a destructor cannot report: callers that care call close()
    }
  }
  if (fd_ >= 0) ::close(fd_);
}

void Hdf5File::close() {
  if (!file_.valid()) return;
  if (fd_ < 0) {
    const hid_t id = file_.release();
    if (H5Fclose(id) < 0) DUALRS_H5_THROW("cannot close HDF5 file '", path_, "'");
    return;
  }
  // The whole file is in memory: take its image, release every HDF5 id, then write the bytes
  // ourselves, where a full disk is an ordinary error.
  if (H5Fflush(file_.id(), H5F_SCOPE_GLOBAL) < 0) DUALRS_H5_THROW("cannot finish HDF5 file '", path_, "'");
  const ssize_t size = H5Fget_file_image(file_.id(), nullptr, 0);
  if (size < 0) DUALRS_H5_THROW("cannot finish HDF5 file '", path_, "'");
  std::vector<char> image(static_cast<std::size_t>(size));
  if (H5Fget_file_image(file_.id(), image.data(), image.size()) != size) {
    DUALRS_H5_THROW("cannot finish HDF5 file '", path_, "'");
  }
  if (H5Fclose(file_.release()) < 0) DUALRS_H5_THROW("cannot close HDF5 file '", path_, "'");
  const int fd = fd_;
  fd_ = -1;
  write_and_close(fd, image.data(), image.size(), path_);
}

void Hdf5File::write_int64(const std::string& name, const std::vector<std::int64_t>& data,
                           const std::vector<std::uint64_t>& dims) {
  write_dataset(file_.id(), path_, name, data.data(), data.size(), dims, H5T_STD_I64LE, H5T_NATIVE_INT64, true);
}

void Hdf5File::write_int32(const std::string& name, const std::vector<std::int32_t>& data,
                           const std::vector<std::uint64_t>& dims) {
  write_dataset(file_.id(), path_, name, data.data(), data.size(), dims, H5T_STD_I32LE, H5T_NATIVE_INT32, true);
}

void Hdf5File::write_int8(const std::string& name, const std::vector<std::int8_t>& data,
                          const std::vector<std::uint64_t>& dims) {
  write_dataset(file_.id(), path_, name, data.data(), data.size(), dims, H5T_STD_I8LE, H5T_NATIVE_INT8, true);
}

void Hdf5File::write_float64(const std::string& name, const std::vector<double>& data,
                             const std::vector<std::uint64_t>& dims) {
  write_dataset(file_.id(), path_, name, data.data(), data.size(), dims, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                false);
}

void Hdf5File::write_float32(const std::string& name, const std::vector<float>& data,
                             const std::vector<std::uint64_t>& dims) {
  write_dataset(file_.id(), path_, name, data.data(), data.size(), dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                false);
}

namespace {

Hdf5Handle open_object(hid_t file, const std::string& path, const std::string& object) {
  Hdf5Handle obj = own(H5Oopen(file, object.empty() ? "/" : object.c_str(), H5P_DEFAULT), H5Oclose);
  if (!obj.valid()) DUALRS_H5_THROW("cannot open object '", display_object(object), "' in HDF5 file '", path, "'");
  return obj;
}

/// Creates (replacing any existing) attribute `name` on `object` and writes `value` to it.
void write_attr(hid_t file, const std::string& path, const std::string& object, const std::string& name,
                hid_t file_type, hid_t mem_type, hid_t space, const void* value) {
  Hdf5Handle obj = open_object(file, path, object);
  const htri_t exists = H5Aexists(obj.id(), name.c_str());
  if (exists < 0 || (exists > 0 && H5Adelete(obj.id(), name.c_str()) < 0)) {
    DUALRS_H5_THROW("cannot replace attribute '", name, "' of '", display_object(object), "' in HDF5 file '",
                    path, "'");
  }
  Hdf5Handle attr = own(H5Acreate2(obj.id(), name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  // `value` is null only for an empty (H5S_NULL) attribute, which has nothing to write.
  if (!attr.valid() || (value != nullptr && H5Awrite(attr.id(), mem_type, value) < 0)) {
    DUALRS_H5_THROW("cannot write attribute '", name, "' of '", display_object(object), "' in HDF5 file '", path,
                    "'");
  }
}

Hdf5Handle scalar_space(const std::string& path) {
  Hdf5Handle space = own(H5Screate(H5S_SCALAR), H5Sclose);
  if (!space.valid()) DUALRS_H5_THROW("cannot create a dataspace in HDF5 file '", path, "'");
  return space;
}

Hdf5Handle utf8_string_type(const std::string& path) {
  Hdf5Handle type = own(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!type.valid() || H5Tset_size(type.id(), H5T_VARIABLE) < 0 || H5Tset_cset(type.id(), H5T_CSET_UTF8) < 0) {
    DUALRS_H5_THROW("cannot create a string type in HDF5 file '", path, "'");
  }
  return type;
}

/// An open attribute with its file type and element count.
struct OpenAttr {
  Hdf5Handle attr;
  Hdf5Handle type;
  std::uint64_t count = 0;
};

OpenAttr open_attr(hid_t file, const std::string& path, const std::string& object, const std::string& name) {
  Hdf5Handle obj = open_object(file, path, object);
  OpenAttr a;
  a.attr = own(H5Aopen(obj.id(), name.c_str(), H5P_DEFAULT), H5Aclose);
  if (!a.attr.valid()) {
    DUALRS_H5_THROW("cannot open attribute '", name, "' of '", display_object(object), "' in HDF5 file '", path,
                    "'");
  }
  a.type = own(H5Aget_type(a.attr.id()), H5Tclose);
  Hdf5Handle space = own(H5Aget_space(a.attr.id()), H5Sclose);
  const hssize_t n = space.valid() ? H5Sget_simple_extent_npoints(space.id()) : -1;
  if (!a.type.valid() || n < 0) {
    DUALRS_H5_THROW("cannot inspect attribute '", name, "' of '", display_object(object), "' in HDF5 file '",
                    path, "'");
  }
  a.count = static_cast<std::uint64_t>(n);
  return a;
}

/// Reads a one-element numeric attribute of class `wanted` into `out` via `mem_type`.
void read_scalar_attr(hid_t file, const std::string& path, const std::string& object, const std::string& name,
                      bool allow_integer, bool allow_float, const char* wanted_text, hid_t mem_type, void* out,
                      bool* is_unsigned = nullptr) {
  OpenAttr a = open_attr(file, path, object, name);
  const H5T_class_t cls = H5Tget_class(a.type.id());
  if (!((allow_integer && cls == H5T_INTEGER) || (allow_float && cls == H5T_FLOAT)) || a.count != 1) {
    DUALRS_THROW(IoError, "attribute '", name, "' of '", display_object(object), "' in HDF5 file '", path,
                 "' is ", type_name(a.type.id()), " with ", a.count, " element(s), expected one ", wanted_text);
  }
  if (is_unsigned != nullptr) *is_unsigned = H5Tget_sign(a.type.id()) == H5T_SGN_NONE;
  if (H5Aread(a.attr.id(), mem_type, out) < 0) {
    DUALRS_H5_THROW("cannot read attribute '", name, "' of '", display_object(object), "' in HDF5 file '", path,
                    "'");
  }
}

herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

herr_t collect_attr(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

}  // namespace

void Hdf5File::set_attr(const std::string& object, const std::string& name, const std::string& value) {
  Hdf5Handle type = utf8_string_type(path_);
  Hdf5Handle space = scalar_space(path_);
  const char* ptr = value.c_str();
  write_attr(file_.id(), path_, object, name, type.id(), type.id(), space.id(), &ptr);
}

void Hdf5File::set_attr(const std::string& object, const std::string& name, double value) {
  Hdf5Handle space = scalar_space(path_);
  write_attr(file_.id(), path_, object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.id(), &value);
}

void Hdf5File::set_attr(const std::string& object, const std::string& name, std::int64_t value) {
  Hdf5Handle space = scalar_space(path_);
  write_attr(file_.id(), path_, object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.id(), &value);
}

void Hdf5File::set_attr(const std::string& object, const std::string& name, std::uint64_t value) {
  Hdf5Handle space = scalar_space(path_);
  write_attr(file_.id(), path_, object, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, space.id(), &value);
}

void Hdf5File::set_attr(const std::string& object, const std::string& name, const std::vector<double>& values) {
  const hsize_t n = values.size();
  // An empty attribute gets a null dataspace (h5py reads it as h5py.Empty).
  Hdf5Handle space = own(n == 0 ? H5Screate(H5S_NULL) : H5Screate_simple(1, &n, nullptr), H5Sclose);
  if (!space.valid()) DUALRS_H5_THROW("cannot create a dataspace for attribute '", name, "' in HDF5 file '", path_, "'");
  write_attr(file_.id(), path_, object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.id(),
             values.empty() ? nullptr : values.data());
}

bool Hdf5File::exists(const std::string& name) const {
  // H5Lexists needs every intermediate link to exist, so walk the path one component at a time.
  std::string prefix;
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t slash = name.find('/', start);
    const std::size_t end = slash == std::string::npos ? name.size() : slash;
    if (end > start) {
      prefix += (prefix.empty() && name[0] != '/' ? "" : "/") + name.substr(start, end - start);
      if (H5Lexists(file_.id(), prefix.c_str(), H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return false;
      }
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

std::vector<std::uint64_t> Hdf5File::dims(const std::string& name) const {
  Hdf5Handle dset = own(H5Dopen2(file_.id(), name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!dset.valid()) DUALRS_H5_THROW("cannot open dataset '", name, "' in HDF5 file '", path_, "'");
  Hdf5Handle space = own(H5Dget_space(dset.id()), H5Sclose);
  const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.id()) : -1;
  if (rank < 0) DUALRS_H5_THROW("cannot get the shape of dataset '", name, "' in HDF5 file '", path_, "'");
  std::vector<hsize_t> d(static_cast<std::size_t>(rank));
  if (rank > 0 && H5Sget_simple_extent_dims(space.id(), d.data(), nullptr) < 0) {
    DUALRS_H5_THROW("cannot get the shape of dataset '", name, "' in HDF5 file '", path_, "'");
  }
  return std::vector<std::uint64_t>(d.begin(), d.end());
}

std::vector<std::int64_t> Hdf5File::read_int64(const std::string& name) const {
  return read_dataset<std::int64_t>(file_.id(), path_, name, H5T_INTEGER, "an integer type", H5T_NATIVE_INT64);
}

std::vector<double> Hdf5File::read_float64(const std::string& name) const {
  return read_dataset<double>(file_.id(), path_, name, H5T_FLOAT, "a floating-point type", H5T_NATIVE_DOUBLE);
}

bool Hdf5File::has_attr(const std::string& object, const std::string& name) const {
  Hdf5Handle obj = open_object(file_.id(), path_, object);
  const htri_t exists = H5Aexists(obj.id(), name.c_str());
  if (exists < 0) {
    DUALRS_H5_THROW("cannot check attribute '", name, "' of '", display_object(object), "' in HDF5 file '", path_,
                    "'");
  }
  return exists > 0;
}

std::string Hdf5File::attr_string(const std::string& object, const std::string& name) const {
  OpenAttr a = open_attr(file_.id(), path_, object, name);
  if (H5Tget_class(a.type.id()) != H5T_STRING || a.count != 1) {
    DUALRS_THROW(IoError, "attribute '", name, "' of '", display_object(object), "' in HDF5 file '", path_,
                 "' is ", type_name(a.type.id()), " with ", a.count, " element(s), expected one string");
  }
  const htri_t variable = H5Tis_variable_str(a.type.id());
  if (variable < 0) DUALRS_H5_THROW("cannot inspect string attribute '", name, "' in HDF5 file '", path_, "'");
  if (variable > 0) {
    Hdf5Handle mem = own(H5Tcopy(H5T_C_S1), H5Tclose);
    char* buf = nullptr;
    if (!mem.valid() || H5Tset_size(mem.id(), H5T_VARIABLE) < 0 ||
        H5Tset_cset(mem.id(), H5Tget_cset(a.type.id())) < 0 || H5Aread(a.attr.id(), mem.id(), &buf) < 0) {
      DUALRS_H5_THROW("cannot read attribute '", name, "' of '", display_object(object), "' in HDF5 file '",
                      path_, "'");
    }
    std::string out = buf != nullptr ? buf : "";
    H5free_memory(buf);
    return out;
  }
  // Fixed-length strings (e.g. written by h5py from numpy bytes): read as stored, stop at NUL.
  const std::size_t size = H5Tget_size(a.type.id());
  std::string buf(size, '\0');
  if (size > 0 && H5Aread(a.attr.id(), a.type.id(), buf.data()) < 0) {
    DUALRS_H5_THROW("cannot read attribute '", name, "' of '", display_object(object), "' in HDF5 file '", path_,
                    "'");
  }
  const std::size_t nul = buf.find('\0');
  if (nul != std::string::npos) buf.resize(nul);
  while (!buf.empty() && buf.back() == ' ') buf.pop_back();  // H5T_STR_SPACEPAD
  return buf;
}

double Hdf5File::attr_double(const std::string& object, const std::string& name) const {
  double value = 0.0;
  read_scalar_attr(file_.id(), path_, object, name, true, true, "number", H5T_NATIVE_DOUBLE, &value);
  return value;
}

std::int64_t Hdf5File::attr_int64(const std::string& object, const std::string& name) const {
  std::uint64_t raw = 0;
  bool is_unsigned = false;
  // Read through uint64/int64 by signedness so that out-of-range values are caught, not clipped.
  read_scalar_attr(file_.id(), path_, object, name, true, false, "integer", H5T_NATIVE_INT64, &raw, &is_unsigned);
  if (is_unsigned) {
    read_scalar_attr(file_.id(), path_, object, name, true, false, "integer", H5T_NATIVE_UINT64, &raw);
    if (raw > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      DUALRS_THROW(IoError, "attribute '", name, "' of '", display_object(object), "' in HDF5 file '", path_,
                   "' = ", raw, " does not fit in int64");
    }
  }
  return static_cast<std::int64_t>(raw);
}

std::uint64_t Hdf5File::attr_uint64(const std::string& object, const std::string& name) const {
  std::int64_t as_signed = 0;
  bool is_unsigned = false;
  read_scalar_attr(file_.id(), path_, object, name, true, false, "integer", H5T_NATIVE_INT64, &as_signed,
                   &is_unsigned);
  if (!is_unsigned) {
    if (as_signed < 0) {
      DUALRS_THROW(IoError, "attribute '", name, "' of '", display_object(object), "' in HDF5 file '", path_,
                   "' = ", as_signed, " is negative, expected an unsigned integer");
    }
    return static_cast<std::uint64_t>(as_signed);
  }
  std::uint64_t value = 0;
  read_scalar_attr(file_.id(), path_, object, name, true, false, "integer", H5T_NATIVE_UINT64, &value);
  return value;
}

std::vector<double> Hdf5File::attr_doubles(const std::string& object, const std::string& name) const {
  OpenAttr a = open_attr(file_.id(), path_, object, name);
  const H5T_class_t cls = H5Tget_class(a.type.id());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
    DUALRS_THROW(IoError, "attribute '", name, "' of '", display_object(object), "' in HDF5 file '", path_,
                 "' is ", type_name(a.type.id()), ", expected numbers");
  }
  std::vector<double> out(a.count);
  if (a.count > 0 && H5Aread(a.attr.id(), H5T_NATIVE_DOUBLE, out.data()) < 0) {
    DUALRS_H5_THROW("cannot read attribute '", name, "' of '", display_object(object), "' in HDF5 file '", path_,
                    "'");
  }
  return out;
}

std::vector<std::string> Hdf5File::list(const std::string& group) const {
  Hdf5Handle obj = open_object(file_.id(), path_, group);
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (H5Literate(obj.id(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, &names) < 0) {
    DUALRS_H5_THROW("cannot list group '", display_object(group), "' in HDF5 file '", path_, "'");
  }
  return names;
}

std::vector<std::string> Hdf5File::attr_names(const std::string& object) const {
  Hdf5Handle obj = open_object(file_.id(), path_, object);
  std::vector<std::string> names;
  hsize_t idx = 0;
  if (H5Aiterate2(obj.id(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, &names) < 0) {
    DUALRS_H5_THROW("cannot list the attributes of '", display_object(object), "' in HDF5 file '", path_, "'");
  }
  return names;
}

std::string Hdf5File::dtype(const std::string& name) const {
  Hdf5Handle dset = own(H5Dopen2(file_.id(), name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!dset.valid()) DUALRS_H5_THROW("cannot open dataset '", name, "' in HDF5 file '", path_, "'");
  Hdf5Handle type = own(H5Dget_type(dset.id()), H5Tclose);
  if (!type.valid()) DUALRS_H5_THROW("cannot get the type of dataset '", name, "' in HDF5 file '", path_, "'");
  return type_name(type.id());
}

std::string Hdf5File::attr_dtype(const std::string& object, const std::string& name) const {
  OpenAttr a = open_attr(file_.id(), path_, object, name);
  return type_name(a.type.id());
}

std::string hdf5_version() {
  unsigned major = 0, minor = 0, release = 0;
  if (H5get_libversion(&major, &minor, &release) < 0) return "unknown";
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
}

}  // namespace dualrs::io
