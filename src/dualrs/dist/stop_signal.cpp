#include "dualrs/dist/stop_signal.h"

#include <signal.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "dualrs/core/error.h"

namespace dualrs::dist {
namespace {

// Process-wide by necessity: a signal handler can only reach static storage.
volatile std::sig_atomic_t g_stop_signal = 0;
volatile std::sig_atomic_t g_graceful_depth = 0;
bool g_installed = false;
struct sigaction g_previous_usr1;
struct sigaction g_previous_term;
struct sigaction g_previous_int;
struct sigaction g_previous_hup;

extern "C" void on_stop_signal(int signal_number) {
  // SIGTERM, SIGINT (Ctrl-C) and SIGHUP (a closed terminal) stop a stop-aware phase; anything
  // else, or the same signal twice, ends the process as it would without a handler.
  const bool terminating = signal_number != SIGUSR1;
  if (terminating && (g_graceful_depth == 0 || g_stop_signal == signal_number)) {
    // Not in a stop-aware phase, or asked twice: behave as if no handler were installed.
    ::signal(signal_number, SIG_DFL);
    ::raise(signal_number);
    return;
  }
  if (g_stop_signal == 0 || terminating) g_stop_signal = signal_number;
}

void install(int signal_number, struct sigaction* previous) {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (::sigaction(signal_number, &action, previous) != 0) {
    DUALRS_THROW(Error, "cannot install the handler of ", signal_name(signal_number), ": ", std::strerror(errno));
  }
}

}  // namespace

StopSignals::StopSignals() {
  if (g_installed) DUALRS_THROW(Error, "StopSignals exists already (one per process)");
  g_stop_signal = 0;
  install(SIGUSR1, &g_previous_usr1);
  install(SIGTERM, &g_previous_term);
  install(SIGINT, &g_previous_int);
  install(SIGHUP, &g_previous_hup);
  g_installed = true;
}

StopSignals::~StopSignals() {
  ::sigaction(SIGUSR1, &g_previous_usr1, nullptr);
  ::sigaction(SIGTERM, &g_previous_term, nullptr);
  ::sigaction(SIGINT, &g_previous_int, nullptr);
  ::sigaction(SIGHUP, &g_previous_hup, nullptr);
  g_installed = false;
}

bool StopSignals::stop_requested() const { return g_stop_signal != 0; }

int StopSignals::signal_number() const { return g_stop_signal; }

StopSignals::GracefulScope::GracefulScope(StopSignals&) { g_graceful_depth = g_graceful_depth + 1; }

StopSignals::GracefulScope::~GracefulScope() { g_graceful_depth = g_graceful_depth - 1; }

const char* signal_name(int signal_number) {
  switch (signal_number) {
    case SIGUSR1: return "SIGUSR1";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    default: return "a signal";
  }
}

}  // namespace dualrs::dist
