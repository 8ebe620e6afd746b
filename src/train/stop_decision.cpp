#include "train/stop_decision.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>

#include "core/host_facts.hpp"
#include "train/stop_signals.hpp"

namespace tessera {
namespace {

std::optional<double> parse_unix_seconds(const std::string& text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc{} || stop != end || value <= 0) return std::nullopt;
  return static_cast<double>(value);
}

std::string trimmed(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

}  // namespace

BoundaryReadings agree_at_boundary(MPI_Comm world, const BoundaryReadings& mine) {
  std::array<double, 5> values{mine.since_checkpoint_s, mine.signal, mine.step_s, mine.checkpoint_s,
                               mine.now};
  MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_MAX,
                world);
  return {values[0], values[1], values[2], values[3], values[4]};
}

StopDecision decide_stop(const BoundaryReadings& agreed, std::optional<double> end_time,
                         double margin_s) {
  StopDecision decision;
  if (agreed.signal > 0) {
    decision.reason = StopReason::signal;
    decision.signal = static_cast<int>(agreed.signal);
    decision.explanation = fmt::format("stopping: received {}", signal_name(decision.signal));
    return decision;
  }
  if (!end_time) return decision;
  const double needed = agreed.step_s + agreed.checkpoint_s + margin_s;
  const double left = *end_time - agreed.now;
  if (needed <= left) return decision;
  decision.reason = StopReason::time_limit;
  decision.explanation = fmt::format(
      "stopping before the time limit: {:.1f} s left until the job ends at {}, and another step "
      "({:.1f} s) + a checkpoint ({:.1f} s) + the margin run.stop_margin_s ({:.0f} s) need {:.1f} "
      "s",
      left, utc_text(*end_time), agreed.step_s, agreed.checkpoint_s, margin_s, needed);
  return decision;
}

double unix_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

StopMonitor::StopMonitor(std::optional<double> end_time, double margin_s,
                         double checkpoint_estimate_s, Clock clock)
    : end_time_(end_time),
      margin_s_(margin_s),
      checkpoint_s_(checkpoint_estimate_s),
      clock_(std::move(clock)) {}

void StopMonitor::step_took(double seconds) { step_s_ = std::max(step_s_, seconds); }

void StopMonitor::save_took(double seconds) {
  checkpoint_s_ = save_measured_ ? std::max(checkpoint_s_, seconds) : seconds;
  save_measured_ = true;
}

BoundaryReadings StopMonitor::readings(int signal, double since_checkpoint_s) const {
  return {since_checkpoint_s, static_cast<double>(signal), step_s_, checkpoint_s_, clock_()};
}

StopDecision StopMonitor::decide(const BoundaryReadings& agreed) const {
  return decide_stop(agreed, end_time_, margin_s_);
}

std::optional<double> parse_squeue_end_time(const std::string& output) {
  const std::string text = trimmed(output);
  if (auto seconds = parse_unix_seconds(text)) return seconds;
  std::tm parts{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &parts);
  if (end == nullptr || *end != '\0') return std::nullopt;
  parts.tm_isdst = -1;  // squeue prints local time; let mktime find out about summer time
  const std::time_t seconds = std::mktime(&parts);
  if (seconds <= 0) return std::nullopt;
  return static_cast<double>(seconds);
}

std::optional<std::string> run_squeue(const std::string& job_id) {
  const bool plain =
      !job_id.empty() && job_id.find_first_not_of("0123456789_+") == std::string::npos;
  if (!plain) return std::nullopt;  // never pass anything else to a shell
  // `timeout`: an unreachable controller must not hold the run (and every rank waiting for
  // rank 0) for long.
  const std::string command =
      "SLURM_TIME_FORMAT=%s timeout 30 squeue -h -j " + job_id + " -o %e 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return std::nullopt;
  std::string output;
  std::array<char, 256> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe.get()) != nullptr) output += buffer.data();
  if (pclose(pipe.release()) != 0) return std::nullopt;
  return output;
}

JobEndTime find_job_end_time(int64_t deadline, const EnvironmentLookup& environment,
                             const SqueueQuery& squeue) {
  if (deadline > 0) return {static_cast<double>(deadline), "run.deadline"};
  if (const char* end = environment("SLURM_JOB_END_TIME")) {
    if (auto seconds = parse_unix_seconds(trimmed(end))) return {seconds, "SLURM_JOB_END_TIME"};
  }
  if (const char* job = environment("SLURM_JOB_ID")) {
    if (auto output = squeue(job)) {
      if (auto seconds = parse_squeue_end_time(*output)) return {seconds, "squeue"};
    }
  }
  return {std::nullopt, "none"};
}

}  // namespace tessera
