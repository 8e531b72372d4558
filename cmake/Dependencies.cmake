# Debian packages the build needs; scripts/install-deps.sh installs them.
find_package(Threads REQUIRED)
if(SPARKV_KERNELS_ONLY)
  # The cross build links none of the Debian libraries. xxHash is used as a header only (the
  # header is the same for every architecture and the cross compiler searches /usr/include), and
  # GoogleTest is built from the sources that Debian's googletest package installs.
  add_library(PkgConfig::XXHASH INTERFACE IMPORTED)
  set_target_properties(PkgConfig::XXHASH PROPERTIES INTERFACE_COMPILE_DEFINITIONS XXH_INLINE_ALL)
  if(SPARKV_BUILD_TESTS)
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    add_subdirectory(/usr/src/googletest/googletest ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)
    # Without the project's warning flags, which are for the project's code, and without warnings.
    set_target_properties(gtest gtest_main PROPERTIES COMPILE_OPTIONS "-w")
  endif()
  return()
endif()
find_package(PkgConfig REQUIRED)
find_package(CURL REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
if(SPARKV_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(SPARKV_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
