// dualrs: certified robustness with Dual Randomized Smoothing. This file only dispatches to
// subcommands and turns errors into one clear line and a non-zero exit code.

#include <iostream>
#include <map>

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <thread>

#include "common.h"
#include "dualrs/config.h"
#include "dualrs/core/error.h"

namespace {

struct Subcommand {
  int (*run)(const dualrs::app::Invocation&);
  const char* summary;
};

const std::map<std::string, Subcommand>& subcommands() {
  using namespace dualrs::app;
  static const std::map<std::string, Subcommand> table = {
      {"radius", {cmd_radius, "certified radius for a vote count (calculator): p_a_lower, radius, abstain as JSON"}},
      {"train-base", {cmd_train_base, "train a base classifier with Gaussian noise augmentation"}},
      {"train-denoiser", {cmd_train_denoiser, "train a small diffusion epsilon-model for denoised smoothing (DDPM objective)"}},
      {"timestep", {cmd_timestep, "the denoising timestep t* and its coefficients for a sigma, as JSON"}},
      {"check-model", {cmd_check_model, "check a TorchScript model against a contract on a dummy batch"}},
      {"label", {cmd_label, "per-sigma radius labels R_c(x, sigma_i) for estimator training (Dual RS)"}},
      {"train-estimator", {cmd_train_estimator, "train the variance estimator on labels (soft CE + consistency)"}},
      {"estimate-sigma", {cmd_estimate_sigma, "the smoothed estimator's sigma choice for each example"}},
      {"finetune", {cmd_finetune, "fine-tune the classifier under the estimated per-example sigma"}},
      {"analyze", {cmd_analyze, "optimal-sigma distribution and Delta R_c / Delta R_sigma summaries (CSV)"}},
      {"certify", {cmd_certify, "certify examples with randomized smoothing (HDF5 + Cohen-style TSV)"}},
      {"predict", {cmd_predict, "predict examples with the smoothed classifier (PREDICT)"}},
      {"table", {cmd_table, "certified-accuracy tables (CSV + Markdown) from result files"}},
      {"run", {cmd_run, "run a job manifest (jobs/*.json): its stages in order, resuming finished ones"}},
      {"validate", {cmd_validate, "check a config or job file against its JSON Schema"}},
  };
  return table;
}

// Intra-op threads for LibTorch: $DUALRS_NUM_THREADS, else $OMP_NUM_THREADS, else every core.
// (Debian's OpenMP runtime may start with one thread when nothing is set.)
void configure_threads() {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  for (const char* name : {"OMP_NUM_THREADS", "DUALRS_NUM_THREADS"}) {
    if (const char* value = std::getenv(name); value != nullptr && std::atoi(value) > 0) threads = std::atoi(value);
  }
  if (threads > 0) at::set_num_threads(threads);
}

void print_usage() {
  std::cout << "dualrs " << DUALRS_VERSION << " (" << DUALRS_GIT_REVISION
            << ") - certified robustness with (Dual) Randomized Smoothing\n\n"
               "usage: dualrs <command> [options]    (dualrs <command> --help for its options)\n\ncommands:\n";
  for (const auto& [name, sub] : subcommands()) {
    std::cout << "  " << name << std::string(17 - name.size(), ' ') << sub.summary << '\n';
  }
  std::cout << "\nquick start:\n  dualrs run jobs/mnist_dual_rs.json --out runs/mnist_dual_rs\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  if (std::string(argv[1]) == "--version") {
    std::cout << "dualrs " << DUALRS_VERSION << " (" << DUALRS_GIT_REVISION << ")\n";
    return 0;
  }
  const std::string name = argv[1];
  auto it = subcommands().find(name);
  if (it == subcommands().end()) {
    std::cerr << "dualrs: unknown command '" << name << "' (see 'dualrs --help')\n";
    return 2;
  }
  dualrs::app::Invocation inv{name, std::vector<std::string>(argv + 2, argv + argc)};
  try {
    configure_threads();
    return it->second.run(inv);
  } catch (const dualrs::ConfigError& e) {
    std::cerr << "dualrs " << name << ": " << e.what() << '\n';
    return 2;
  } catch (const dualrs::Error& e) {
    std::cerr << "dualrs " << name << ": error: " << e.what() << '\n';
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "dualrs " << name << ": torch error: " << e.what_without_backtrace() << '\n';
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "dualrs " << name << ": unexpected error: " << e.what() << '\n';
    return 1;
  }
}
