// dualrs: certified robustness with Dual Randomized Smoothing. This file sets up the job
// (MPI when a launcher started us, signal handlers), dispatches to subcommands and turns
// errors into one clear line and a non-zero exit code: agreed errors are reported once by
// rank 0; anything unexpected on one rank of several ends the whole job (MPI_Abort) rather
// than leaving the others waiting.

#include <iostream>
#include <map>
#include <optional>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "args.h"
#include "dualrs/build_info.h"
#include "dualrs/core/error.h"
#include "dualrs/dist/mpi_communicator.h"
#include "dualrs/dist/nccl_communicator.h"
#include "dualrs/dist/shard_runner.h"
#include "dualrs/dist/stop_signal.h"
#include "dualrs/model/blas_threads.h"
#include "dualrs/pipeline/registry.h"

namespace {

// Subcommands that are tools rather than pipeline stages; the stages come from the registry.
struct Tool {
  const char* name;
  int (*run)(const dualrs::app::Invocation&);
  const char* summary;
};

const std::vector<Tool>& tools() {
  using namespace dualrs::app;
  static const std::vector<Tool> table = {
      {"radius", cmd_radius, "certified radius for a vote count (calculator): p_a_lower, radius, abstain as JSON"},
      {"timestep", cmd_timestep, "the denoising timestep t* and its coefficients for a sigma, as JSON"},
      {"check-model", cmd_check_model, "check a TorchScript model against a contract on a dummy batch"},
      {"run", cmd_run, "run a job manifest (jobs/*.json): its stages in order, resuming finished ones"},
      {"validate", cmd_validate, "check a config or job file against its JSON Schema"},
      {"merge", cmd_merge, "merge a sharded stage's shards (e.g. of Slurm array jobs) into its output file"},
      {"calibrate", cmd_calibrate, "measure the models' throughput on this device for --dry-run --calibration (device-hours)"},
      {"index-dataset", cmd_index_dataset, "build or check the cached file index of an ImageNet folder (ranks > 0 then list nothing)"},
      {"stages", cmd_stages, "list the pipeline stages (registry): traits, config sections, Slurm template, GPUs"},
  };
  return table;
}

/// Runs subcommand `name`: a registry stage or a tool. Returns false when there is none.
bool dispatch(const std::string& name, const dualrs::app::Invocation& inv, int& code) {
  if (const dualrs::pipeline::Stage* stage = dualrs::pipeline::find_stage(name)) {
    code = dualrs::app::run_stage_command(*stage, inv);
    return true;
  }
  for (const Tool& tool : tools()) {
    if (name == tool.name) {
      code = tool.run(inv);
      return true;
    }
  }
  return false;
}

// Intra-op threads for LibTorch: $DUALRS_NUM_THREADS, else $OMP_NUM_THREADS, else this
// rank's share of the node's cores (every core for a single process). (Debian's OpenMP
// runtime may start with one thread when nothing is set.) OpenBLAS, where LibTorch uses it,
// gets one thread of its own unless $OPENBLAS_NUM_THREADS says otherwise (model/blas_threads.h).
void configure_threads(const dualrs::dist::World& world) {
  int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / std::max(1, world.local_size));
  for (const char* name : {"OMP_NUM_THREADS", "DUALRS_NUM_THREADS"}) {
    if (const char* value = std::getenv(name); value != nullptr && std::atoi(value) > 0) threads = std::atoi(value);
  }
  if (threads > 0) at::set_num_threads(threads);
  dualrs::model::limit_openblas_threads(1);
}

void print_usage() {
  std::cout << "dualrs " << DUALRS_VERSION << " (" << DUALRS_GIT_REVISION
            << ") - certified robustness with (Dual) Randomized Smoothing\n\n"
               "usage: dualrs <command> [options]    (dualrs <command> --help for its options)\n\ncommands:\n";
  std::map<std::string, std::string> lines;  // every subcommand once, sorted by name
  for (const auto& stage : dualrs::pipeline::stages()) lines[stage->name()] = stage->summary();
  for (const Tool& tool : tools()) lines[tool.name] = tool.summary;
  for (const auto& [name, summary] : lines) {
    std::cout << "  " << name << std::string(17 - name.size(), ' ') << summary << '\n';
  }
  std::cout << "\nquick start:\n  dualrs run jobs/mnist_dual_rs.json --out runs/mnist_dual_rs\n"
               "\ndistributed: every command runs unchanged under 'mpirun -np K dualrs ...' or 'srun --mpi=pmix dualrs ...';\n"
               "label, estimate-sigma, certify and predict split their shards over the ranks, resume from finished\n"
               "shards, and exit with code 75 after SIGUSR1/SIGTERM (run them again to finish).\n";
}

/// The exit code and words of an exception, Torch's errors included.
dualrs::dist::Failure describe_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const c10::Error& e) {
    return {1, std::string("torch error: ") + e.what_without_backtrace()};
  } catch (...) {
    return dualrs::dist::describe_standard(std::current_exception());
  }
}

void print_lines(const std::string& prefix, const std::string& text) {
  std::cerr << prefix << text << '\n' << std::flush;
}

}  // namespace

int main(int argc, char** argv) {
  namespace dist = dualrs::dist;
  std::optional<dist::MpiEnvironment> env;
  try {
    env.emplace(&argc, &argv);
    dist::check_not_silent_singleton(env->world());
  } catch (const std::exception& e) {
    std::cerr << "dualrs: error: " << e.what() << '\n';
    return 1;
  }
  const dist::World& world = env->world();
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    if (world.is_root()) print_usage();
    return argc < 2 ? 2 : 0;
  }
  if (std::string(argv[1]) == "--version") {
    if (world.is_root()) {
      std::cout << "dualrs " << DUALRS_VERSION << " (" << DUALRS_GIT_REVISION << ")\n";
      // The NCCL data-parallel training on GPUs would use: a runtime other than the header's
      // (e.g. LibTorch's own NCCL loaded first) is worth a warning.
      const dist::NcclVersions nccl = dist::nccl_versions();
      std::cout << (dist::nccl_built() ? nccl.describe() : std::string("NCCL: not built (DUALRS_WITH_NCCL=OFF or not found)"))
                << "\n";
      // Whether native models can train and certify on GPUs here (Debian's libtorch: 0).
      std::cout << "LibTorch " << TORCH_VERSION << ": " << torch::cuda::device_count() << " CUDA device(s) visible\n";
    }
    return 0;
  }
  const std::string name = argv[1];
  const bool known = dualrs::pipeline::find_stage(name) != nullptr ||
                     std::any_of(tools().begin(), tools().end(), [&](const Tool& t) { return name == t.name; });
  if (!known) {
    if (world.is_root()) std::cerr << "dualrs: unknown command '" << name << "' (see 'dualrs --help')\n";
    return 2;
  }
  std::optional<dist::StopSignals> signals;
  try {
    signals.emplace();
  } catch (const std::exception& e) {
    std::cerr << world.tag() << "dualrs: error: " << e.what() << '\n';
    return 1;
  }
  dualrs::pipeline::StageContext ctx{env->communicator(), world, *signals, describe_error, env->library_version(),
                                dualrs::Verbosity::kNormal, dualrs::ShardSubset{}, nullptr};
  dualrs::app::Invocation inv{name, std::vector<std::string>(argv + 2, argv + argc), &ctx};
  const std::string prefix = "dualrs " + name + ": ";
  // After an agreed stop or failure every rank meets once more before exiting: launchers end
  // the whole job when the first rank exits non-zero, and by then every rank has cleaned up
  // (lock files, messages).
  const auto exit_together = [&](int code) {
    try {
      ctx.comm.barrier();
    } catch (const std::exception&) {
    }
    return code;
  };
  try {
    configure_threads(world);
    int code = 0;
    dispatch(name, inv, code);
    return code;
  } catch (const dist::Preempted&) {
    return exit_together(dist::kExitPreempted);  // rank 0 has said what is done and how to resume
  } catch (const dist::AgreedFailure& failure) {
    for (const std::string& line : failure.lines()) print_lines(prefix, line);
    return exit_together(failure.exit_code());
  } catch (...) {
    const dist::Failure failure = describe_error(std::current_exception());
    if (world.size > 1) {
      // Thrown on this rank alone, outside an agreed phase: the others may be waiting in a
      // collective, so end the whole job now.
      env->communicator().abort(failure.exit_code, world.tag() + prefix + failure.message +
                                                       " (unexpected on one rank: ending the whole job)");
    }
    print_lines(prefix, failure.message);
    return failure.exit_code;
  }
}
