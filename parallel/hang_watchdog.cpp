#include "parallel/hang_watchdog.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <mutex>
#include <thread>

#include "parallel/fail_fast.hpp"
#include "parallel/hostnames.hpp"
#include "parallel/mpi_communicator.hpp"

namespace tessera {
namespace {

constexpr int kHeartbeatTag = 1;  // a member rank's progress, to rank 0
constexpr int kAnswerTag = 2;     // rank 0's progress, to a member rank

/// What travels: a rank's step, operation and how long it has been in it (a duration, not a
/// time, so that the nodes' clocks need not agree).
struct Heartbeat {
  int64_t step = 0;
  int64_t marks = 0;
  double idle_s = 0.0;
  char operation[112] = {};  // the operations' names are shorter
};

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// Often enough that a stopped rank is told from a waiting one well within the timeout, seldom
/// enough to cost nothing (one small message per rank every few seconds at most).
double heartbeat_period(double timeout_s) { return std::clamp(timeout_s / 6.0, 0.25, 10.0); }

/// A watching thread that wakes this much later than asked was not running: its process was
/// stopped (SIGSTOP, a debugger, a paused node) or starved far beyond a busy machine's delays.
double suspension_gap(double period_s) { return std::max(3.0 * period_s, 2.0); }

bool mpi_thread_multiple() {
  int provided = MPI_THREAD_SINGLE;
  MPI_Query_thread(&provided);
  return provided == MPI_THREAD_MULTIPLE;
}

}  // namespace

class HangWatchdog::Watcher {
 public:
  Watcher(MPI_Comm comm, const HangWatchdogOptions& options)
      : comm_(duplicate(comm)), options_(options), period_s_(heartbeat_period(options.timeout_s)) {
    MPI_Comm_rank(comm_.get(), &rank_);
    MPI_Comm_size(comm_.get(), &size_);
    const double started = seconds_now();
    marked_at_ = started;
    watched_since_ = started;
    known_.resize(size_);
    heard_at_.assign(size_, started);
    received_.assign(size_, 0);
    ticks_sent_.assign(size_, 0);
    sends_.assign(size_, MPI_REQUEST_NULL);
    outgoing_.resize(size_);
    const std::vector<std::string> hosts = gather_hostnames(comm_.get());
    for (int r = 0; r < size_; ++r) {
      known_[r].rank = r;
      known_[r].host = hosts[static_cast<std::size_t>(r)];
      known_[r].never_heard = r != rank_;
    }
    // The same on every rank (the timeout is configuration, the thread level the library's),
    // so finish() is collective on all ranks or on none.
    watching_ = options.timeout_s > 0 && (size_ == 1 || mpi_thread_multiple());
    if (watching_) {
      thread_ = std::thread([this] { watch(); });
    } else if (options.timeout_s > 0 && rank_ == 0) {
      std::cerr << "tessera: warning: the MPI library gives no MPI_THREAD_MULTIPLE, so hangs are "
                   "not watched ("
                << options.setting << ")" << std::endl;
    }
  }

  ~Watcher() {
    stop();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    for (MPI_Request& request : sends_) {
      if (request != MPI_REQUEST_NULL) MPI_Request_free(&request);
    }
  }

  void mark(int64_t step, const char* operation) noexcept {
    step_.store(step, std::memory_order_relaxed);
    marks_.fetch_add(1, std::memory_order_relaxed);
    operation_.store(operation, std::memory_order_relaxed);
    marked_at_.store(seconds_now(), std::memory_order_release);
  }

  bool watching() const { return watching_; }

  void finish() {
    if (!watching_) return;
    stop();
    // Every heartbeat sent is received and every answer too, so that none is left unmatched.
    const int64_t mine = sent_;
    std::vector<int64_t> sent_to_root(size_, 0);
    MPI_Gather(&mine, 1, MPI_INT64_T, sent_to_root.data(), 1, MPI_INT64_T, 0, comm_.get());
    Heartbeat heartbeat;
    if (rank_ == 0) {
      for (int r = 1; r < size_; ++r) {
        for (; received_[r] < sent_to_root[r]; ++received_[r]) {
          receive(r, kHeartbeatTag, heartbeat);
        }
      }
    }
    int64_t answers = 0;
    MPI_Scatter(ticks_sent_.data(), 1, MPI_INT64_T, &answers, 1, MPI_INT64_T, 0, comm_.get());
    if (rank_ != 0) {
      for (; received_[0] < answers; ++received_[0]) receive(0, kAnswerTag, heartbeat);
    }
    MPI_Waitall(static_cast<int>(sends_.size()), sends_.data(), MPI_STATUSES_IGNORE);
  }

 private:
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  void receive(int source, int tag, Heartbeat& heartbeat) {
    MPI_Recv(&heartbeat, sizeof heartbeat, MPI_BYTE, source, tag, comm_.get(), MPI_STATUS_IGNORE);
  }

  void watch() {
    std::unique_lock<std::mutex> lock(mutex_);
    double last_tick = seconds_now();
    while (!wake_.wait_for(lock, std::chrono::duration<double>(period_s_),
                           [this] { return stopping_; })) {
      const double now = seconds_now();
      // Time this rank did not see is not held against the others: after a suspension it
      // watches a whole timeout afresh. A rank stopped and then continued (as Open MPI does
      // before it kills a job that another rank has already ended) thus does not report the
      // hang that it caused a second time.
      if (now - last_tick > period_s_ + suspension_gap(period_s_)) watched_since_ = now;
      last_tick = now;
      if (rank_ == 0) {
        watch_as_root(now);
      } else {
        watch_as_member(now);
      }
    }
  }

  Heartbeat own_heartbeat(double now) const {
    Heartbeat heartbeat;
    heartbeat.step = step_.load(std::memory_order_relaxed);
    heartbeat.marks = marks_.load(std::memory_order_relaxed);
    heartbeat.idle_s = own_idle(now);
    std::strncpy(heartbeat.operation, operation_.load(std::memory_order_relaxed),
                 sizeof heartbeat.operation - 1);
    return heartbeat;
  }

  /// Sends `heartbeat` to `rank` unless the last one to it is still in flight.
  bool send(int rank, int tag, const Heartbeat& heartbeat) {
    int done = 1;
    if (sends_[rank] != MPI_REQUEST_NULL) MPI_Test(&sends_[rank], &done, MPI_STATUS_IGNORE);
    if (!done) return false;
    outgoing_[rank] = heartbeat;
    MPI_Isend(&outgoing_[rank], sizeof(Heartbeat), MPI_BYTE, rank, tag, comm_.get(), &sends_[rank]);
    return true;
  }

  /// Takes in every message from `source` (MPI_ANY_SOURCE too) with `tag` that has arrived.
  void take_arrivals(int source, int tag, double now) {
    for (;;) {
      int arrived = 0;
      MPI_Status status;
      MPI_Iprobe(source, tag, comm_.get(), &arrived, &status);
      if (!arrived) return;
      Heartbeat heartbeat;
      receive(status.MPI_SOURCE, tag, heartbeat);
      remember(status.MPI_SOURCE, heartbeat, now);
      ++received_[status.MPI_SOURCE];
    }
  }

  void remember(int rank, const Heartbeat& heartbeat, double now) {
    RankProgress& progress = known_[rank];
    progress.step = heartbeat.step;
    progress.marks = heartbeat.marks;
    progress.operation.assign(heartbeat.operation,
                              strnlen(heartbeat.operation, sizeof heartbeat.operation));
    progress.idle_s = heartbeat.idle_s;
    progress.never_heard = false;
    heard_at_[rank] = now;
  }

  /// Seconds since this rank marked progress, as far as this watcher saw them.
  double own_idle(double now) const {
    return std::min(now - marked_at_.load(std::memory_order_acquire), now - watched_since_);
  }

  /// known_[rank] as of `now`: the idle time grows by the silence since it was heard; neither
  /// counts from before this watcher last began watching.
  RankProgress progress_now(int rank, double now) const {
    RankProgress progress = known_[rank];
    const double watched_s = now - watched_since_;
    progress.silent_s = std::min(now - heard_at_[rank], watched_s);
    progress.idle_s = std::min(progress.idle_s + now - heard_at_[rank], watched_s);
    return progress;
  }

  void watch_as_root(double now) {
    if (size_ > 1) take_arrivals(MPI_ANY_SOURCE, kHeartbeatTag, now);
    const Heartbeat mine = own_heartbeat(now);
    remember(0, mine, now);
    for (int r = 1; r < size_; ++r) {
      if (send(r, kAnswerTag, mine)) ++ticks_sent_[r];
    }
    std::vector<RankProgress> ranks;
    for (int r = 0; r < size_; ++r) {
      ranks.push_back(progress_now(r, now));
      if (ranks.back().idle_s < options_.timeout_s) return;  // someone still progresses
    }
    end_job(describe_hang(ranks, options_.timeout_s, 3 * period_s_, options_.setting));
  }

  void watch_as_member(double now) {
    take_arrivals(0, kAnswerTag, now);
    if (send(0, kHeartbeatTag, own_heartbeat(now))) ++sent_;
    const RankProgress root = progress_now(0, now);
    // Rank 1 stands in for a silent rank 0; the others only should rank 1 be gone as well.
    const double patience = rank_ == 1 ? options_.timeout_s : 2 * options_.timeout_s;
    const Heartbeat mine = own_heartbeat(now);
    if (mine.idle_s < options_.timeout_s || root.silent_s < patience) return;
    const RankProgress self{rank_,       mine.step, mine.operation,    mine.marks,
                            mine.idle_s, 0.0,       known_[rank_].host};
    end_job(describe_hang({root, self}, options_.timeout_s, 3 * period_s_, options_.setting));
  }

  [[noreturn]] void end_job(const std::string& line) {
    std::cerr << rank_failure_message(rank_, size_, line) << std::endl;
    MPI_Abort(MPI_COMM_WORLD, options_.exit_status);
    std::_Exit(options_.exit_status);  // MPI_Abort does not return
  }

  UniqueMpiComm comm_;
  HangWatchdogOptions options_;
  double period_s_;
  int rank_ = 0;
  int size_ = 1;

  std::atomic<int64_t> step_{0};
  std::atomic<int64_t> marks_{0};
  std::atomic<const char*> operation_{""};
  std::atomic<double> marked_at_{0.0};

  // Owned by the watching thread (and by finish() once it has stopped). Rank 0 keeps every
  // rank's latest heartbeat; a member rank keeps rank 0's (the answers) and its own slot.
  std::vector<RankProgress> known_;
  std::vector<double> heard_at_;
  double watched_since_ = 0.0;       // start, or the end of the last suspension
  std::vector<int64_t> received_;    // heartbeats or answers received from each rank
  std::vector<int64_t> ticks_sent_;  // answers rank 0 sent to each rank
  int64_t sent_ = 0;                 // heartbeats a member sent to rank 0
  std::vector<MPI_Request> sends_;   // one send in flight per destination at most
  std::vector<Heartbeat> outgoing_;  // their buffers

  bool watching_ = false;  // set before the thread starts, the same on every rank
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

HangWatchdog::HangWatchdog(MPI_Comm comm, const HangWatchdogOptions& options)
    : watcher_(std::make_unique<Watcher>(comm, options)) {}

HangWatchdog::~HangWatchdog() = default;

void HangWatchdog::mark(int64_t step, const char* operation) noexcept {
  watcher_->mark(step, operation);
}

void HangWatchdog::finish() { watcher_->finish(); }

bool HangWatchdog::watching() const { return watcher_->watching(); }

}  // namespace tessera
