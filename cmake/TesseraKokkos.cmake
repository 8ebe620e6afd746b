# Kokkos and KokkosKernels for the Kokkos backend, as the target tessera_kokkos_libraries.
#
# 1. A site's Kokkos (3.7 or later; 4.x as Spack or a module installs it, with OpenMP, CUDA, HIP or
#    SYCL): find_package(Kokkos) and find_package(KokkosKernels) through CMAKE_PREFIX_PATH or
#    Kokkos_ROOT / KokkosKernels_ROOT.
# 2. Otherwise Debian's Trilinos packaging (libtrilinos-kokkos-dev, libtrilinos-kokkos-kernels-dev:
#    Kokkos 3.4, Serial), whose CMake configuration names an include directory that does not
#    exist: the headers are in /usr/include/trilinos and the libraries are linked by name.
add_library(tessera_kokkos_libraries INTERFACE)

find_package(Kokkos 3.7 CONFIG QUIET)
if(Kokkos_FOUND)
  find_package(KokkosKernels CONFIG REQUIRED)
  target_link_libraries(tessera_kokkos_libraries INTERFACE Kokkos::kokkos Kokkos::kokkoskernels)
  message(STATUS "Kokkos backend: Kokkos ${Kokkos_VERSION} from ${Kokkos_DIR} "
                 "(devices: ${Kokkos_DEVICES})")
  return()
endif()

find_path(TESSERA_TRILINOS_INCLUDE_DIR Kokkos_Core.hpp PATH_SUFFIXES trilinos)
find_library(TESSERA_KOKKOS_CORE_LIBRARY trilinos_kokkoscore)
find_library(TESSERA_KOKKOS_CONTAINERS_LIBRARY trilinos_kokkoscontainers)
find_library(TESSERA_KOKKOS_KERNELS_LIBRARY trilinos_kokkoskernels)
if(NOT TESSERA_TRILINOS_INCLUDE_DIR OR NOT TESSERA_KOKKOS_CORE_LIBRARY
   OR NOT TESSERA_KOKKOS_KERNELS_LIBRARY)
  message(FATAL_ERROR
    "TESSERA_KOKKOS=ON needs Kokkos and KokkosKernels: load your site's Kokkos module (or set "
    "Kokkos_ROOT and KokkosKernels_ROOT), or on Debian run scripts/install-deps.sh "
    "(libtrilinos-kokkos-dev, libtrilinos-kokkos-kernels-dev)")
endif()
# SYSTEM: Kokkos's own headers are not held to tessera's warning flags.
target_include_directories(tessera_kokkos_libraries SYSTEM INTERFACE
                           ${TESSERA_TRILINOS_INCLUDE_DIR})
target_link_libraries(tessera_kokkos_libraries INTERFACE ${TESSERA_KOKKOS_KERNELS_LIBRARY}
                      ${TESSERA_KOKKOS_CONTAINERS_LIBRARY} ${TESSERA_KOKKOS_CORE_LIBRARY})
message(STATUS "Kokkos backend: Debian's Trilinos Kokkos in ${TESSERA_TRILINOS_INCLUDE_DIR}")
