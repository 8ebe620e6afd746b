#include "train/stop_signals.hpp"

#include <pthread.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.hpp"

namespace tessera {
namespace {

// A signal handler can only reach state with static storage duration, and may only write a
// `volatile std::sig_atomic_t` there (C++ [support.signal]): this is the one variable the
// handler sets. It stays file-local; everything else reads it through StopSignals::received().
volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void record_stop_signal(int signal) { g_stop_signal = signal; }

void install(int signal, struct sigaction& previous) {
  struct sigaction action {};
  action.sa_handler = record_stop_signal;
  sigemptyset(&action.sa_mask);
  // Restart interrupted system calls: a write or an MPI wait in progress simply goes on.
  action.sa_flags = SA_RESTART;
  TESSERA_CHECK(sigaction(signal, &action, &previous) == 0,
                std::string("sigaction: ") + std::strerror(errno));
}

sigset_t stop_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void block_stop_signals_in_new_threads() {
  const sigset_t set = stop_signal_set();
  TESSERA_CHECK(pthread_sigmask(SIG_BLOCK, &set, nullptr) == 0, "pthread_sigmask failed");
}

StopSignals::StopSignals() {
  g_stop_signal = 0;
  install(SIGUSR1, previous_usr1_);
  install(SIGTERM, previous_term_);
  const sigset_t set = stop_signal_set();
  TESSERA_CHECK(pthread_sigmask(SIG_BLOCK, &set, &previous_mask_) == 0, "pthread_sigmask failed");
  waiter_ = std::thread([this] { wait_for_signals(); });  // inherits the block
}

void StopSignals::wait_for_signals() {
  const sigset_t set = stop_signal_set();
  for (;;) {
    int signal = 0;
    if (sigwait(&set, &signal) != 0) continue;
    if (stopping_.load()) return;  // the destructor's wake-up call, not a stop request
    if (signal == SIGTERM) {
      const auto now = std::chrono::steady_clock::now();
      if (term_seen_ && now - first_term_ >= std::chrono::seconds(1)) {
        std::fputs("tessera: a second SIGTERM: ending now, without a checkpoint\n", stderr);
        std::_Exit(128 + SIGTERM);
      }
      if (!term_seen_) first_term_ = now;
      term_seen_ = true;
    }
    g_stop_signal = signal;
  }
}

StopSignals::~StopSignals() {
  stopping_.store(true);
  pthread_kill(waiter_.native_handle(), SIGUSR1);  // blocked there: sigwait takes it
  waiter_.join();
  pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
  sigaction(SIGUSR1, &previous_usr1_, nullptr);
  sigaction(SIGTERM, &previous_term_, nullptr);
}

int StopSignals::received() const { return g_stop_signal; }

const char* signal_name(int signal) {
  switch (signal) {
    case SIGUSR1:
      return "SIGUSR1";
    case SIGTERM:
      return "SIGTERM";
    default:
      return "a signal";
  }
}

}  // namespace tessera
