// The Kokkos backend: one implementation of the kernel seam for every device a Kokkos build
// targets (Serial and OpenMP CPUs, CUDA, HIP, SYCL). The execution space is the Kokkos build's
// default; tessera's code names no vendor. Built with -DTESSERA_KOKKOS=ON (doc/kokkos.md).
#pragma once

#include <memory>
#include <string>

#include "backend/backend.hpp"

namespace tessera {

/// A Kokkos backend computing in fp32. The first one initialises Kokkos for the process; it is
/// finalised when the last is destroyed (Kokkos cannot start again in the same process, so a
/// backend made after that throws InternalError).
std::unique_ptr<Backend> make_kokkos_backend();

/// The Kokkos version and execution space this build runs on, e.g. "Kokkos 3.4.1, Serial".
std::string kokkos_build_description();

}  // namespace tessera
