# FindValijson
# ------------
# Finds the header-only valijson JSON Schema validator (Debian: libvalijson-dev).
# Defines Valijson_FOUND and the imported target Valijson::Valijson.
find_path(Valijson_INCLUDE_DIR NAMES valijson/validator.hpp HINTS ${Valijson_ROOT} $ENV{Valijson_ROOT})
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Valijson REQUIRED_VARS Valijson_INCLUDE_DIR)
if(Valijson_FOUND AND NOT TARGET Valijson::Valijson)
  add_library(Valijson::Valijson INTERFACE IMPORTED)
  set_target_properties(Valijson::Valijson PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${Valijson_INCLUDE_DIR}")
endif()
mark_as_advanced(Valijson_INCLUDE_DIR)
