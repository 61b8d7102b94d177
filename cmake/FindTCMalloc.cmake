# FindTCMalloc
# ------------
# Finds TCMalloc's minimal library (gperftools; Debian: libtcmalloc-minimal4). The runtime
# package ships only the soname libtcmalloc_minimal.so.4 (the libtcmalloc_minimal.so link
# comes with libgoogle-perftools-dev), so both names are tried in every directory.
#
# Defines TCMalloc_FOUND, TCMalloc_LIBRARY and the imported target TCMalloc::TCMalloc.

find_library(TCMalloc_LIBRARY NAMES tcmalloc_minimal libtcmalloc_minimal.so.4 NAMES_PER_DIR
  HINTS ${TCMalloc_ROOT} $ENV{TCMalloc_ROOT} PATH_SUFFIXES lib lib64)

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(TCMalloc REQUIRED_VARS TCMalloc_LIBRARY)
if(TCMalloc_FOUND AND NOT TARGET TCMalloc::TCMalloc)
  add_library(TCMalloc::TCMalloc UNKNOWN IMPORTED)
  set_target_properties(TCMalloc::TCMalloc PROPERTIES IMPORTED_LOCATION "${TCMalloc_LIBRARY}")
endif()
mark_as_advanced(TCMalloc_LIBRARY)
