// The device under test of the Kokkos conformance binary: the Kokkos backend of this build, in
// whatever execution space its Kokkos was built for (Serial here).
#include "backend/kokkos/kokkos_backend.hpp"
#include "conformance_support.hpp"

namespace tessera::test {

Backend& device_backend() {
  // Never destroyed, like the CPU reference: Kokkos stays initialised until the process ends.
  static Backend* backend = make_kokkos_backend().release();
  return *backend;
}

std::string device_unavailable_reason() { return ""; }

}  // namespace tessera::test
