#include "parallel/hostnames.hpp"

#include <array>

#include "core/host_facts.hpp"

namespace tessera {

std::vector<std::string> gather_hostnames(MPI_Comm comm) {
  std::array<char, 256> mine{};  // a fixed width, so that one all-gather moves every name
  const std::string name = host_name();
  name.copy(mine.data(), mine.size() - 1);
  int size = 1;
  MPI_Comm_size(comm, &size);
  std::vector<char> all(mine.size() * static_cast<std::size_t>(size));
  MPI_Allgather(mine.data(), static_cast<int>(mine.size()), MPI_CHAR, all.data(),
                static_cast<int>(mine.size()), MPI_CHAR, comm);
  std::vector<std::string> hosts;
  for (int rank = 0; rank < size; ++rank) hosts.emplace_back(&all[rank * mine.size()]);
  return hosts;
}

}  // namespace tessera
