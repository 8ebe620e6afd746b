#include "backend/kokkos/kokkos_runtime.hpp"

#include <Kokkos_Core.hpp>

#include "core/error.hpp"

namespace tessera::kokkos {

std::shared_ptr<KokkosRuntime> KokkosRuntime::acquire() {
  // Kokkos itself is process-wide state (initialised at most once per process), so the object
  // that owns it is found through one process-wide weak reference: backends made while one is
  // alive share it, and the last one to go finalises Kokkos.
  static std::weak_ptr<KokkosRuntime> live;
  if (std::shared_ptr<KokkosRuntime> runtime = live.lock()) return runtime;
  std::shared_ptr<KokkosRuntime> runtime(new KokkosRuntime);
  live = runtime;
  return runtime;
}

KokkosRuntime::KokkosRuntime() {
  TESSERA_CHECK(!Kokkos::is_initialized(),
                "Kokkos is already initialised by another part of this process");
  // Settings come from the environment (KOKKOS_NUM_THREADS, KOKKOS_DEVICE_ID, ...), as at any
  // site. Initialising after finalize fails inside Kokkos with its own message.
  Kokkos::initialize();
}

KokkosRuntime::~KokkosRuntime() { Kokkos::finalize(); }

}  // namespace tessera::kokkos
