// Kokkos's initialisation and finalisation, owned by one small RAII object that the backends of a
// process share.
#pragma once

#include <memory>

namespace tessera::kokkos {

class KokkosRuntime {
 public:
  /// The process's runtime: the live one, or a new one that initialises Kokkos. Throws
  /// InternalError when Kokkos was already finalised (it cannot start twice in one process) or
  /// was initialised by someone else.
  static std::shared_ptr<KokkosRuntime> acquire();

  ~KokkosRuntime();
  KokkosRuntime(const KokkosRuntime&) = delete;
  KokkosRuntime& operator=(const KokkosRuntime&) = delete;

 private:
  KokkosRuntime();
};

}  // namespace tessera::kokkos
