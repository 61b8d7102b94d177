# All third-party dependencies, each as an imported target. Everything comes from Debian
# packages (scripts/install-deps.sh installs them); CUDA and NCCL from the CUDA toolkit.

find_package(Torch REQUIRED)                      # target: torch (libtorch-dev 1.13, CPU here)
find_package(HDF5 REQUIRED COMPONENTS C)          # serial C API only (docs/cluster.md §4)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)  # Boost::program_options, Boost::boost (Math)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Valijson REQUIRED)
find_package(Random123 REQUIRED)
find_package(ZLIB REQUIRED)                       # gzip'd MNIST IDX files
find_package(TurboJPEG REQUIRED)                  # ImageNet JPEG decoding (dualrs_data only)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)  # SHA-256 of resolved configs (provenance)
find_package(Threads REQUIRED)
find_package(MPI REQUIRED COMPONENTS CXX)         # MPI::MPI_CXX (Open MPI 4.1, with PMIx for srun --mpi=pmix)

# HDF5's FindHDF5 gives hdf5::hdf5 on CMake >= 3.19; build one for older module variants.
if(NOT TARGET hdf5::hdf5)
  add_library(hdf5::hdf5 INTERFACE IMPORTED)
  target_include_directories(hdf5::hdf5 INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
  target_link_libraries(hdf5::hdf5 INTERFACE ${HDF5_C_LIBRARIES})
  target_compile_definitions(hdf5::hdf5 INTERFACE ${HDF5_C_DEFINITIONS} ${HDF5_DEFINITIONS})
endif()

# --- Optional packages: DUALRS_WITH_<FLAG> = AUTO finds the package when present, ON requires
# it, OFF skips it; DUALRS_HAVE_<FLAG> says what this build has.
macro(dualrs_find_optional flag package)
  set(DUALRS_HAVE_${flag} OFF)
  if(NOT DUALRS_WITH_${flag} STREQUAL "OFF")
    if(DUALRS_WITH_${flag} STREQUAL "ON")
      find_package(${package} REQUIRED)
    else()
      find_package(${package} QUIET)
    endif()
    if(${package}_FOUND)
      set(DUALRS_HAVE_${flag} ON)
    endif()
  endif()
endmacro()

# CUDA and NCCL (the CUDA toolkit of this machine lives in /usr/local/cuda).
if(NOT DEFINED CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
  set(CUDAToolkit_ROOT /usr/local/cuda)
endif()
dualrs_find_optional(CUDA CUDAToolkit)
dualrs_find_optional(NCCL NCCL)

# TCMalloc: the executables' malloc. glibc 2.36 does not reuse freed blocks that LibTorch
# allocates with posix_memalign (64-byte alignment) once they are large, so every batched
# forward maps its activations afresh and takes ~85,000 zero-fill page faults per 1000 MNIST
# samples; TCMalloc reuses them (dualrs certify at batch 250: 36 % less CPU time, 20x fewer
# page faults). The target dualrs_malloc is empty when TCMalloc is off or absent.
dualrs_find_optional(TCMALLOC TCMalloc)
add_library(dualrs_malloc INTERFACE)
if(DUALRS_HAVE_TCMALLOC)
  target_link_libraries(dualrs_malloc INTERFACE TCMalloc::TCMalloc)
endif()
# The NCCL communicator selects devices with the CUDA runtime (cudaSetDevice): no NCCL without it.
if(DUALRS_HAVE_NCCL AND NOT DUALRS_HAVE_CUDA)
  if(DUALRS_WITH_NCCL STREQUAL "ON")
    message(FATAL_ERROR "DUALRS_WITH_NCCL=ON needs the CUDA toolkit (DUALRS_WITH_CUDA is OFF or it was not found)")
  endif()
  message(STATUS "dualrs: NCCL found but no CUDA toolkit; building the NCCL stub")
  set(DUALRS_HAVE_NCCL OFF)
endif()
# A LibTorch built with CUDA (TorchConfig lists its CUDA libraries): data-parallel training
# then enqueues NCCL collectives on LibTorch's current CUDA stream.
if(TORCH_CUDA_LIBRARIES)
  set(DUALRS_HAVE_TORCH_CUDA ON)
else()
  set(DUALRS_HAVE_TORCH_CUDA OFF)
endif()

foreach(_flag CUDA NCCL TCMALLOC TORCH_CUDA)
  if(DUALRS_HAVE_${_flag})
    set(DUALRS_HAVE_${_flag}_01 1)
  else()
    set(DUALRS_HAVE_${_flag}_01 0)
  endif()
endforeach()
