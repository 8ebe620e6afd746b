// main() for GoogleTest binaries that run under mpiexec: every rank runs every test; rank 0
// prints the full report, the other ranks print only their failures (prefixed with the rank);
// the exit status is non-zero if any rank failed.
#include <gtest/gtest.h>
#include <mpi.h>

#include <iostream>
#include <string>

#include "parallel/mpi_session.hpp"

namespace {

/// Prints one line per failed assertion, naming the rank; silent otherwise.
class FailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  // UnitTest::current_test_info() must not be called from OnTestPartResult (it takes the lock
  // gtest holds there), so the test's name is kept from OnTestStart.
  void OnTestStart(const testing::TestInfo& test) override {
    test_ = std::string(test.test_suite_name()) + "." + test.name();
  }
  void OnTestEnd(const testing::TestInfo&) override { test_ = "(outside a test)"; }
  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::cerr << "[rank " << rank_ << "] FAILED " << test_ << " at "
              << (result.file_name() != nullptr ? result.file_name() : "?") << ":"
              << result.line_number() << "\n"
              << result.summary() << std::endl;
  }

 private:
  int rank_;
  std::string test_ = "(outside a test)";
};

}  // namespace

int main(int argc, char** argv) {
  const tessera::MpiSession mpi(argc, argv);  // MPI set up as tessera's own programs set it up
  testing::InitGoogleTest(&argc, argv);
  const int rank = mpi.rank();
  const int size = mpi.size();
  if (rank != 0) {
    testing::TestEventListeners& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(rank));
  }
  const int local = RUN_ALL_TESTS() == 0 ? 0 : 1;
  int failed_ranks = 0;
  MPI_Allreduce(&local, &failed_ranks, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) {
    std::cout << (failed_ranks == 0 ? "all " : "FAILED: ")
              << (failed_ranks == 0 ? size : failed_ranks) << " of " << size << " ranks "
              << (failed_ranks == 0 ? "passed" : "had failures") << std::endl;
  }
  return failed_ranks == 0 ? 0 : 1;
}
