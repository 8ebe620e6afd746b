#include "parallel/agreement.hpp"

#include <limits>
#include <optional>
#include <string>

namespace tessera {

void run_agreed(Communicator& world, const std::function<void()>& step) {
  std::optional<std::string> problem;
  try {
    step();
  } catch (const UsageError& error) {
    problem = error.what();
  }
  // The maximum of -rank over failing ranks names the lowest of them.
  const double none = -std::numeric_limits<double>::infinity();
  const double lowest = world.all_reduce_max_double(problem ? -world.rank() : none);
  if (lowest == none) return;
  if (problem && -lowest == world.rank()) throw RankUsageError(*problem);
  throw PeerUsageError();
}

}  // namespace tessera
