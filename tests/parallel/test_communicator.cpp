// MpiCommunicator against hand-computed answers; run at 1, 2 and 4 ranks.
#include <gtest/gtest.h>
#include <mpi.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "parallel/mpi_communicator.hpp"

namespace tessera {
namespace {

MpiCommunicator world() { return MpiCommunicator(duplicate(MPI_COMM_WORLD)); }

float as_float(std::size_t i) { return static_cast<float>(i); }
float as_float(int i) { return static_cast<float>(i); }

TEST(MpiCommunicator, RankAndSizeMatchTheWorld) {
  MpiCommunicator comm = world();
  int rank = -1;
  int size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(comm.rank(), rank);
  EXPECT_EQ(comm.size(), size);
  EXPECT_NE(comm.handle(), MPI_COMM_WORLD);  // a duplicate: its traffic never mixes with others
}

TEST(MpiCommunicator, AllReduceSumAddsEveryRanksBuffer) {
  MpiCommunicator comm = world();
  const auto size = static_cast<float>(comm.size());
  std::vector<float> data(37);
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = as_float(i + 1) * (as_float(comm.rank()) + 1.0f);
  comm.all_reduce_sum(data.data(), data.size());
  for (std::size_t i = 0; i < data.size(); ++i) {
    EXPECT_EQ(data[i], as_float(i + 1) * size * (size + 1) / 2) << i;  // small integers: exact
  }
}

TEST(MpiCommunicator, AllReduceMaxTakesTheLargestValueOfEachElement) {
  MpiCommunicator comm = world();
  const int size = comm.size();
  std::vector<float> data(11);
  // Element i is largest on rank i % size, with a negative value elsewhere.
  for (std::size_t i = 0; i < data.size(); ++i) {
    const bool largest_here = static_cast<int>(i) % size == comm.rank();
    data[i] = largest_here ? as_float(i) + 0.5f : -as_float(comm.rank()) - 1.0f;
  }
  comm.all_reduce_max(data.data(), data.size());
  for (std::size_t i = 0; i < data.size(); ++i) EXPECT_EQ(data[i], as_float(i) + 0.5f) << i;
}

/// Each rank's block of a reduce-scatter of `per_rank` elements a rank: the sum of its block.
void check_reduce_scatter(std::size_t per_rank) {
  MpiCommunicator comm = world();
  const int size = comm.size();
  std::vector<float> in(per_rank * static_cast<std::size_t>(size));
  for (std::size_t b = 0; b < static_cast<std::size_t>(size); ++b) {
    for (std::size_t i = 0; i < per_rank; ++i) {
      in[b * per_rank + i] = 100.0f * as_float(comm.rank()) + as_float(10 * b + i);
    }
  }
  std::vector<float> out(per_rank, -1.0f);
  comm.reduce_scatter_sum(in.data(), out.data(), per_rank);
  for (std::size_t i = 0; i < per_rank; ++i) {
    const float expected = 100.0f * static_cast<float>(size * (size - 1) / 2) +
                           static_cast<float>(size) * as_float(10 * comm.rank() + i);
    ASSERT_EQ(out[i], expected) << i;
  }
}

TEST(MpiCommunicator, ReduceScatterSumGivesEachRankTheSumOfItsBlock) { check_reduce_scatter(5); }

TEST(MpiCommunicator, ReduceScatterSumOfLargeBlocksGoesInPiecesWithTheSameResult) {
  // Past 8 MiB in all, reduce_scatter_sum reduces in pieces (the last one shorter).
  check_reduce_scatter(3'000'001);
}

TEST(MpiCommunicator, AllGatherConcatenatesInRankOrder) {
  MpiCommunicator comm = world();
  const std::size_t per_rank = 3;
  std::vector<float> in(per_rank);
  for (std::size_t i = 0; i < per_rank; ++i) in[i] = 10.0f * as_float(comm.rank()) + as_float(i);
  std::vector<float> out(per_rank * static_cast<std::size_t>(comm.size()), -1.0f);
  comm.all_gather(in.data(), out.data(), per_rank);
  for (std::size_t j = 0; j < out.size(); ++j) {
    EXPECT_EQ(out[j], 10.0f * as_float(j / per_rank) + as_float(j % per_rank)) << j;
  }
}

TEST(MpiCommunicator, BroadcastCopiesTheRootsBufferFromEveryRoot) {
  MpiCommunicator comm = world();
  for (int root = 0; root < comm.size(); ++root) {
    std::vector<float> data(4, static_cast<float>(comm.rank()));
    if (comm.rank() == root) data = {1.5f, 2.5f, static_cast<float>(root), -4.0f};
    comm.broadcast(data.data(), data.size(), root);
    EXPECT_EQ(data, (std::vector<float>{1.5f, 2.5f, static_cast<float>(root), -4.0f}));
  }
}

TEST(MpiCommunicator, ScalarSumAndMax) {
  MpiCommunicator comm = world();
  const int size = comm.size();
  EXPECT_EQ(comm.all_reduce_sum_double(comm.rank() + 0.5), size * (size - 1) / 2.0 + 0.5 * size);
  EXPECT_EQ(comm.all_reduce_max_double(-1.0 * comm.rank()), 0.0);
  EXPECT_EQ(comm.all_reduce_max_double(comm.rank() * 2.0), 2.0 * (size - 1));
}

TEST(MpiCommunicator, NonBlockingCollectivesCompleteInAnyWaitOrder) {
  MpiCommunicator comm = world();
  const int size = comm.size();
  const auto ranks = static_cast<std::size_t>(size);
  std::vector<float> summed(1000, 1.0f);
  std::vector<float> blocks(2 * ranks, static_cast<float>(comm.rank()));
  std::vector<float> scattered(2, -1.0f);
  const float mine[2] = {static_cast<float>(comm.rank()), 7.0f};
  std::vector<float> gathered(2 * ranks, -1.0f);
  Request sum = comm.all_reduce_sum_async(summed.data(), summed.size());
  Request scatter = comm.reduce_scatter_sum_async(blocks.data(), scattered.data(), 2);
  Request gather = comm.all_gather_async(mine, gathered.data(), 2);
  EXPECT_FALSE(sum.complete());
  gather.wait();
  scatter.wait();
  sum.wait();
  EXPECT_TRUE(sum.complete());
  sum.wait();  // waiting again is harmless
  for (float x : summed) ASSERT_EQ(x, static_cast<float>(size));
  const auto rank_sum = static_cast<float>(size * (size - 1) / 2);
  EXPECT_EQ(scattered, (std::vector<float>{rank_sum, rank_sum}));
  for (std::size_t r = 0; r < ranks; ++r) {
    EXPECT_EQ(gathered[2 * r], static_cast<float>(r));
    EXPECT_EQ(gathered[2 * r + 1], 7.0f);
  }
}

/// Open MPI's setting for the nonblocking allreduce, read back through the MPI tool interface;
/// -1 where the library has no such variable.
int open_mpi_nonblocking_allreduce_algorithm() {
  int provided = 0;
  if (MPI_T_init_thread(MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS) return -1;
  int index = 0, value = -1, count = 0;
  if (MPI_T_cvar_get_index("coll_libnbc_iallreduce_algorithm", &index) == MPI_SUCCESS) {
    MPI_T_cvar_handle handle;
    MPI_T_cvar_handle_alloc(index, nullptr, &handle, &count);
    MPI_T_cvar_read(handle, &value);
    MPI_T_cvar_handle_free(&handle);
  }
  MPI_T_finalize();
  return value;
}

// MpiSession (which this binary's main starts MPI through) asks Open MPI for Rabenseifner's
// allreduce on the gradient buckets; the default would reduce them in place over a binomial tree.
TEST(MpiSession, NonBlockingAllreduceIsBandwidthOptimalUnlessTheUserChoseOne) {
  const int algorithm = open_mpi_nonblocking_allreduce_algorithm();
  if (algorithm < 0) GTEST_SKIP() << "not Open MPI: its libnbc variable does not exist";
  const char* expected = std::getenv("EXPECTED_IALLREDUCE_ALGORITHM");
  EXPECT_EQ(algorithm, expected != nullptr ? std::stoi(expected) : 3);
}

TEST(MpiCommunicator, RequestsAreMovableAndDefaultComplete) {
  MpiCommunicator comm = world();
  Request empty;
  EXPECT_TRUE(empty.complete());
  empty.wait();
  float value = 1.0f;
  Request started = comm.all_reduce_sum_async(&value, 1);
  Request moved = std::move(started);
  moved = comm.all_reduce_sum_async(&value, 0);  // assigning waits for the first
  EXPECT_EQ(value, static_cast<float>(comm.size()));
  moved.wait();
  {
    float again = 1.0f;
    Request scoped = comm.all_reduce_sum_async(&again, 1);
    // replacing (or destroying) a pending request waits for it
    scoped = Request();
    EXPECT_EQ(again, static_cast<float>(comm.size()));
  }
}

TEST(MpiCommunicator, RingOfNonBlockingSendsAndReceives) {
  MpiCommunicator comm = world();
  const int next = (comm.rank() + 1) % comm.size();
  const int previous = (comm.rank() + comm.size() - 1) % comm.size();
  const std::vector<float> outgoing = {static_cast<float>(comm.rank()), 42.0f};
  std::vector<float> incoming(2, -1.0f);
  // Every rank sends before it receives: only safe because the send does not block.
  Request send = comm.send_async(outgoing.data(), outgoing.size(), next, 3);
  Request recv = comm.recv_async(incoming.data(), incoming.size(), previous, 3);
  recv.wait();
  send.wait();
  EXPECT_EQ(incoming, (std::vector<float>{static_cast<float>(previous), 42.0f}));
}

TEST(MpiCommunicator, BlockingSendAndReceiveBetweenPairs) {
  MpiCommunicator comm = world();
  if (comm.size() < 2) GTEST_SKIP() << "needs two ranks";
  const int partner = comm.rank() ^ 1;
  if (partner >= comm.size()) return;  // odd world: the last rank sits out
  std::vector<float> message(1000);
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = as_float(i) + as_float(comm.rank());
  std::vector<float> received(message.size());
  // Two tags in one direction arrive in the order they were sent; the lower rank sends first.
  if (comm.rank() < partner) {
    comm.send(message.data(), message.size(), partner, 1);
    comm.recv(received.data(), received.size(), partner, 2);
  } else {
    comm.recv(received.data(), received.size(), partner, 1);
    comm.send(message.data(), message.size(), partner, 2);
  }
  for (std::size_t i = 0; i < received.size(); ++i) {
    ASSERT_EQ(received[i], as_float(i) + as_float(partner));
  }
}

TEST(MpiCommunicator, ExchangeSwapsLargeBuffersBetweenPairs) {
  MpiCommunicator comm = world();
  if (comm.size() < 2) GTEST_SKIP() << "needs two ranks";
  const int partner = comm.rank() ^ 1;
  if (partner >= comm.size()) return;  // odd world: the last rank sits out
  // Large enough that a plain blocking send by both ranks first could not complete eagerly.
  std::vector<float> mine(1 << 20), theirs(mine.size(), -1.0f);
  for (std::size_t i = 0; i < mine.size(); ++i)
    mine[i] = as_float(i % 4096) + as_float(comm.rank());
  comm.exchange(mine.data(), theirs.data(), mine.size(), partner);
  for (std::size_t i = 0; i < theirs.size(); ++i) {
    ASSERT_EQ(theirs[i], as_float(i % 4096) + as_float(partner));
  }
}

// ---- deterministic_all_reduce_sum ----

/// Contribution `index` (a microbatch's gradient), element i: magnitudes spread over 2^-10..2^9
/// with both signs, so that float addition in another association gives other bits.
float contribution(int index, std::size_t i) {
  const auto k = static_cast<int>(i % 1009);
  const float mantissa = 1.0f + static_cast<float>((index * 7 + k * 13) % 17) / 17.0f;
  const int exponent = (index * 5 + k * 3) % 20 - 10;
  const float sign = (index + k) % 3 == 0 ? -1.0f : 1.0f;
  return sign * std::ldexp(mantissa, exponent);
}

std::vector<std::uint32_t> bits_of(const std::vector<float>& values) {
  std::vector<std::uint32_t> bits;
  for (float v : values) bits.push_back(std::bit_cast<std::uint32_t>(v));
  return bits;
}

/// ((c_first + c_first+1) + ...) + c_last: sequential accumulation into a gradient buffer.
std::vector<float> accumulate(int first, int count, std::size_t length) {
  std::vector<float> sum(length, 0.0f);
  for (std::size_t i = 0; i < length; ++i) {
    sum[i] = contribution(first, i);
    for (int c = first + 1; c < first + count; ++c) sum[i] += contribution(c, i);
  }
  return sum;
}

TEST(DeterministicAllReduce, EqualsSequentialAccumulationWithOneMicrobatchPerRank) {
  MpiCommunicator comm = world();
  // Crosses the reduction's internal piece boundary (2^18 elements).
  const std::size_t length = (std::size_t{1} << 18) + 5;
  std::vector<float> data(length);
  for (std::size_t i = 0; i < length; ++i) data[i] = contribution(comm.rank(), i);
  deterministic_all_reduce_sum(comm, data.data(), length);
  const std::vector<float> single_rank = accumulate(0, comm.size(), length);
  EXPECT_EQ(bits_of(data), bits_of(single_rank));

  // The values do tell associations apart, so the equality above is not luck.
  if (comm.size() >= 4) {
    std::size_t differ = 0;
    for (std::size_t i = 0; i < length; ++i) {
      const float pairwise =
          (contribution(0, i) + contribution(1, i)) + (contribution(2, i) + contribution(3, i));
      const float sequential =
          ((contribution(0, i) + contribution(1, i)) + contribution(2, i)) + contribution(3, i);
      differ += std::bit_cast<std::uint32_t>(pairwise) != std::bit_cast<std::uint32_t>(sequential);
    }
    EXPECT_GT(differ, 0u);
  }
}

TEST(DeterministicAllReduce, SeveralMicrobatchesPerRankSumTheRankPartialsInRankOrder) {
  MpiCommunicator comm = world();
  // Eight microbatches split over the ranks, each rank accumulating its own consecutively.
  constexpr int kMicrobatches = 8;
  if (kMicrobatches % comm.size() != 0) GTEST_SKIP() << "needs a world size dividing 8";
  const int per_rank = kMicrobatches / comm.size();
  const std::size_t length = 4096;
  std::vector<float> data = accumulate(comm.rank() * per_rank, per_rank, length);
  deterministic_all_reduce_sum(comm, data.data(), length);
  // The documented association: partials p_r added left to right.
  std::vector<float> expected = accumulate(0, per_rank, length);
  for (int r = 1; r < comm.size(); ++r) {
    const std::vector<float> partial = accumulate(r * per_rank, per_rank, length);
    for (std::size_t i = 0; i < length; ++i) expected[i] += partial[i];
  }
  EXPECT_EQ(bits_of(data), bits_of(expected));
  if (comm.size() == 1) {
    EXPECT_EQ(bits_of(data), bits_of(accumulate(0, kMicrobatches, length)));
  }
}

TEST(DeterministicAllReduce, SameValuesOverDifferentGroupingsGiveTheSameBits) {
  MpiCommunicator comm = world();
  // The world split into groups of g consecutive ranks, for each g dividing the world size:
  // within a group, group rank j contributes microbatch j. Every grouping must reproduce the
  // sequential sum of g microbatches bit for bit, on every rank.
  const std::size_t length = 2048;
  for (int g = 1; g <= comm.size(); ++g) {
    if (comm.size() % g != 0) continue;
    MpiCommunicator group(split(comm.handle(), comm.rank() / g, comm.rank()));
    std::vector<float> data(length);
    for (std::size_t i = 0; i < length; ++i) data[i] = contribution(group.rank(), i);
    deterministic_all_reduce_sum(group, data.data(), length);
    EXPECT_EQ(bits_of(data), bits_of(accumulate(0, g, length))) << "groups of " << g;
  }
}

}  // namespace
}  // namespace tessera
