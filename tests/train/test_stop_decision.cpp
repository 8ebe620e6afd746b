// The early-stop decision: signals, the time limit with an injected clock, where the job's end
// time comes from, and the handlers' lifetime.
#include <gtest/gtest.h>
#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <map>
#include <string>
#include <thread>

#include "train/stop_decision.hpp"
#include "train/stop_signals.hpp"

namespace tessera {
namespace {

/// A clock the test moves by hand.
struct ManualClock {
  double now = 1'000'000.0;
  StopMonitor::Clock function() {
    return [this] { return now; };
  }
};

TEST(StopDecision, NoEndTimeAndNoSignalNeverStops) {
  BoundaryReadings agreed{.step_s = 1e9, .checkpoint_s = 1e9, .now = 1e12};
  EXPECT_EQ(decide_stop(agreed, std::nullopt, 60).reason, StopReason::none);
}

TEST(StopDecision, SignalStopsAndIsNamed) {
  BoundaryReadings agreed{.signal = SIGUSR1};
  const StopDecision stop = decide_stop(agreed, std::nullopt, 60);
  EXPECT_EQ(stop.reason, StopReason::signal);
  EXPECT_EQ(stop.signal, SIGUSR1);
  EXPECT_EQ(stop.explanation, "stopping: received SIGUSR1");
  agreed.signal = SIGTERM;
  EXPECT_EQ(decide_stop(agreed, std::nullopt, 60).explanation, "stopping: received SIGTERM");
}

TEST(StopDecision, SignalWinsOverTheTimeLimit) {
  BoundaryReadings agreed{.signal = SIGTERM, .step_s = 10, .now = 100};
  EXPECT_EQ(decide_stop(agreed, 105.0, 0).reason, StopReason::signal);
}

TEST(StopDecision, TimeLimitCountsStepCheckpointAndMargin) {
  // 100 s left: 30 + 20 + 50 = 100 fits exactly, one more second does not.
  BoundaryReadings agreed{.step_s = 30, .checkpoint_s = 20, .now = 1000};
  EXPECT_EQ(decide_stop(agreed, 1100.0, 50).reason, StopReason::none);
  agreed.now = 1001;
  const StopDecision stop = decide_stop(agreed, 1100.0, 50);
  EXPECT_EQ(stop.reason, StopReason::time_limit);
  EXPECT_NE(stop.explanation.find("stopping before the time limit: 99.0 s left"), std::string::npos)
      << stop.explanation;
  EXPECT_NE(stop.explanation.find("need 100.0 s"), std::string::npos) << stop.explanation;
  EXPECT_NE(stop.explanation.find("1970-01-01T00:18:20Z"), std::string::npos) << stop.explanation;
}

TEST(StopDecision, PastDeadlineStops) {
  BoundaryReadings agreed{.now = 2000};
  EXPECT_EQ(decide_stop(agreed, 1000.0, 0).reason, StopReason::time_limit);
}

TEST(StopMonitor, InjectedClockDrivesTheTimeLimit) {
  ManualClock clock;
  const double end = clock.now + 300;
  StopMonitor monitor(end, /*margin_s=*/60, /*checkpoint_estimate_s=*/40, clock.function());
  monitor.step_took(10);
  monitor.step_took(25);  // the longest step counts
  monitor.step_took(5);
  // 300 s left >= 25 + 40 + 60.
  EXPECT_EQ(monitor.decide(monitor.readings(0, 0)).reason, StopReason::none);
  EXPECT_EQ(monitor.readings(0, 0).now, clock.now);
  clock.now = end - 125;  // exactly enough
  EXPECT_EQ(monitor.decide(monitor.readings(0, 0)).reason, StopReason::none);
  clock.now += 0.5;
  EXPECT_EQ(monitor.decide(monitor.readings(0, 0)).reason, StopReason::time_limit);
}

TEST(StopMonitor, FirstMeasuredSaveReplacesTheEstimate) {
  ManualClock clock;
  StopMonitor monitor(clock.now + 100, 0, /*checkpoint_estimate_s=*/500, clock.function());
  EXPECT_EQ(monitor.readings(0, 0).checkpoint_s, 500);
  EXPECT_EQ(monitor.decide(monitor.readings(0, 0)).reason, StopReason::time_limit);
  monitor.save_took(3);  // the estimate was pessimistic
  EXPECT_EQ(monitor.readings(0, 0).checkpoint_s, 3);
  EXPECT_EQ(monitor.decide(monitor.readings(0, 0)).reason, StopReason::none);
  monitor.save_took(2);
  monitor.save_took(7);
  EXPECT_EQ(monitor.readings(0, 0).checkpoint_s, 7);
}

TEST(StopMonitor, ReadingsCarryTheSignalAndTheInterval) {
  ManualClock clock;
  StopMonitor monitor(std::nullopt, 60, 1, clock.function());
  const BoundaryReadings readings = monitor.readings(SIGUSR1, 42.5);
  EXPECT_EQ(readings.signal, SIGUSR1);
  EXPECT_EQ(readings.since_checkpoint_s, 42.5);
  EXPECT_EQ(monitor.decide(readings).reason, StopReason::signal);
}

TEST(StopDecision, AgreementIsTheMaximumOfEachField) {
  int size = 0, rank = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  BoundaryReadings mine{.since_checkpoint_s = 1.0 + rank,
                        .signal = 0,
                        .step_s = 2.0,
                        .checkpoint_s = 3.0 * (rank + 1),
                        .now = 4.0};
  const BoundaryReadings agreed = agree_at_boundary(MPI_COMM_WORLD, mine);
  EXPECT_EQ(agreed.since_checkpoint_s, size);
  EXPECT_EQ(agreed.checkpoint_s, 3.0 * size);
  EXPECT_EQ(agreed.step_s, 2.0);
  EXPECT_EQ(agreed.now, 4.0);
}

// --- where the end time comes from -----------------------------------------------------------

struct FakeEnvironment {
  std::map<std::string, std::string> values;
  EnvironmentLookup lookup() const {
    return [this](const char* name) -> const char* {
      auto it = values.find(name);
      return it == values.end() ? nullptr : it->second.c_str();
    };
  }
};

SqueueQuery squeue_saying(std::optional<std::string> output, std::string* asked = nullptr) {
  return [output, asked](const std::string& job) {
    if (asked) *asked = job;
    return output;
  };
}

TEST(JobEndTime, ConfigDeadlineOverridesSlurm) {
  FakeEnvironment environment{{{"SLURM_JOB_END_TIME", "2000"}, {"SLURM_JOB_ID", "7"}}};
  const JobEndTime end = find_job_end_time(1234, environment.lookup(), squeue_saying("3000"));
  EXPECT_EQ(end.unix_time, 1234.0);
  EXPECT_EQ(end.source, "run.deadline");
}

TEST(JobEndTime, SlurmEnvironmentBeforeSqueue) {
  FakeEnvironment environment{{{"SLURM_JOB_END_TIME", "2000"}, {"SLURM_JOB_ID", "7"}}};
  const JobEndTime end = find_job_end_time(0, environment.lookup(), squeue_saying("3000"));
  EXPECT_EQ(end.unix_time, 2000.0);
  EXPECT_EQ(end.source, "SLURM_JOB_END_TIME");
}

TEST(JobEndTime, SqueueWhenOnlyTheJobIdIsKnown) {
  // Slurm 22.05 (Debian 12) sets SLURM_JOB_ID but no SLURM_JOB_END_TIME.
  FakeEnvironment environment{{{"SLURM_JOB_ID", "4242"}}};
  std::string asked;
  const JobEndTime end =
      find_job_end_time(0, environment.lookup(), squeue_saying("1764165600\n", &asked));
  EXPECT_EQ(asked, "4242");
  EXPECT_EQ(end.unix_time, 1764165600.0);
  EXPECT_EQ(end.source, "squeue");
}

TEST(JobEndTime, NoneOutsideSlurmOrWhenSlurmHasNoAnswer) {
  FakeEnvironment outside;
  EXPECT_FALSE(find_job_end_time(0, outside.lookup(), squeue_saying("3000")).unix_time);
  FakeEnvironment job{{{"SLURM_JOB_ID", "7"}, {"SLURM_JOB_END_TIME", "soon"}}};
  EXPECT_FALSE(find_job_end_time(0, job.lookup(), squeue_saying(std::nullopt)).unix_time);
  const JobEndTime unlimited = find_job_end_time(0, job.lookup(), squeue_saying("N/A\n"));
  EXPECT_FALSE(unlimited.unix_time);
  EXPECT_EQ(unlimited.source, "none");
}

TEST(JobEndTime, ParsesBothSqueueFormats) {
  EXPECT_EQ(parse_squeue_end_time(" 1764165600\n"), 1764165600.0);
  std::tm parts{};
  parts.tm_year = 2026 - 1900, parts.tm_mon = 10, parts.tm_mday = 26, parts.tm_hour = 15;
  parts.tm_isdst = -1;
  EXPECT_EQ(parse_squeue_end_time("2026-11-26T15:00:00\n"),
            static_cast<double>(std::mktime(&parts)));
  EXPECT_FALSE(parse_squeue_end_time("N/A"));
  EXPECT_FALSE(parse_squeue_end_time("Unknown"));
  EXPECT_FALSE(parse_squeue_end_time(""));
  EXPECT_FALSE(parse_squeue_end_time("2026-11-26T15:00:00 and more"));
}

TEST(JobEndTime, SqueueIsNeverGivenAShellWord) {
  EXPECT_FALSE(run_squeue("1; touch /tmp/owned"));
  EXPECT_FALSE(run_squeue(""));
}

// --- the handlers --------------------------------------------------------------------------

volatile std::sig_atomic_t g_previous_handler_calls = 0;
extern "C" void count_previous_handler(int) {
  g_previous_handler_calls = g_previous_handler_calls + 1;
}

/// received() once it reports `signal`, or after 5 s: the waiter thread records it shortly after
/// the process receives it.
int received_within(const StopSignals& signals, int signal) {
  for (int tries = 0; tries < 500 && signals.received() != signal; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return signals.received();
}

TEST(StopSignals, RecordsSignalsAndRestoresThePreviousHandlers) {
  struct sigaction counting {
  }, saved_usr1{}, saved_term{};
  counting.sa_handler = count_previous_handler;
  sigemptyset(&counting.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &counting, &saved_usr1), 0);
  ASSERT_EQ(sigaction(SIGTERM, &counting, &saved_term), 0);
  {
    StopSignals signals;
    EXPECT_EQ(signals.received(), 0);
    // To the process, as Slurm and the launchers send them.
    ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
    EXPECT_EQ(received_within(signals, SIGUSR1), SIGUSR1);
    ASSERT_EQ(kill(getpid(), SIGTERM), 0);
    EXPECT_EQ(received_within(signals, SIGTERM), SIGTERM);
    EXPECT_EQ(g_previous_handler_calls, 0);  // ours ran, not the previous one
  }
  ASSERT_EQ(std::raise(SIGUSR1), 0);
  ASSERT_EQ(std::raise(SIGTERM), 0);
  EXPECT_EQ(g_previous_handler_calls, 2);  // restored
  {
    StopSignals fresh;  // a new run starts without the old signal
    EXPECT_EQ(fresh.received(), 0);
  }
  sigaction(SIGUSR1, &saved_usr1, nullptr);
  sigaction(SIGTERM, &saved_term, nullptr);
}

TEST(StopSignals, Names) {
  EXPECT_STREQ(signal_name(SIGUSR1), "SIGUSR1");
  EXPECT_STREQ(signal_name(SIGTERM), "SIGTERM");
}

}  // namespace
}  // namespace tessera
