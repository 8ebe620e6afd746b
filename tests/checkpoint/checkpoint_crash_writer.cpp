// Saves checkpoints into a CheckpointDirectory forever (until killed): the victim of
// test_checkpoint_crash. Usage: checkpoint_crash_writer DIRECTORY FIRST_STEP
#include <mpi.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "checkpoint_crash_tensors.hpp"
#include "io/checkpoint/checkpoint.hpp"

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  MPI_Init(&argc, &argv);
  tessera::CheckpointDirectory directory(MPI_COMM_WORLD, argv[1], 2);
  for (int64_t step = std::atoll(argv[2]);; ++step) {
    std::vector<std::vector<float>> storage;
    directory.save(step, tessera::checkpoint_test::crash_blocks(step, storage), {{"step", step}});
  }
}
