# FindTurboJPEG
# ------------
# Finds the TurboJPEG API of libjpeg-turbo (Debian: libturbojpeg0-dev), used by dualrs_data to
# decode ImageNet JPEGs. Defines TurboJPEG_FOUND, TurboJPEG_VERSION (from pkg-config when
# available) and the imported target TurboJPEG::TurboJPEG.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_TurboJPEG QUIET libturbojpeg)
endif()
find_path(TurboJPEG_INCLUDE_DIR NAMES turbojpeg.h
  HINTS ${TurboJPEG_ROOT} $ENV{TurboJPEG_ROOT} ${PC_TurboJPEG_INCLUDE_DIRS} PATH_SUFFIXES include)
# The shared library first; some distributions ship only libturbojpeg.so.0 without the dev link.
find_library(TurboJPEG_LIBRARY NAMES turbojpeg libturbojpeg.so.0 NAMES_PER_DIR
  HINTS ${TurboJPEG_ROOT} $ENV{TurboJPEG_ROOT} ${PC_TurboJPEG_LIBRARY_DIRS} PATH_SUFFIXES lib lib64)
set(TurboJPEG_VERSION "${PC_TurboJPEG_VERSION}")
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(TurboJPEG
  REQUIRED_VARS TurboJPEG_LIBRARY TurboJPEG_INCLUDE_DIR
  VERSION_VAR TurboJPEG_VERSION)
if(TurboJPEG_FOUND AND NOT TARGET TurboJPEG::TurboJPEG)
  add_library(TurboJPEG::TurboJPEG UNKNOWN IMPORTED)
  set_target_properties(TurboJPEG::TurboJPEG PROPERTIES
    IMPORTED_LOCATION "${TurboJPEG_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${TurboJPEG_INCLUDE_DIR}")
endif()
mark_as_advanced(TurboJPEG_INCLUDE_DIR TurboJPEG_LIBRARY)
