// The plot stage: the figures of a run, drawn by analysis/dualrs_plots.py (Python, matplotlib).
// This file only finds the script and a Python that can run it, and reports failures in one line.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "dualrs/build_info.h"
#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/pipeline/stage.h"
#include "dualrs/pipeline/stage_context.h"

extern char** environ;

namespace dualrs::pipeline {
namespace fs = std::filesystem;

namespace {

constexpr int kExitMissingModule = 3;  // dualrs_plots.py: a Python module is missing
constexpr const char* kScript = "dualrs_plots.py";

struct ProcessResult {
  int spawn_error = 0;  ///< errno of posix_spawnp (e.g. ENOENT: no such program); 0 when it ran
  int exit_code = -1;   ///< exit status, or 128 + signal
  std::string err;      ///< captured stderr
};

// Runs argv[0] (searched in PATH) with stdout inherited (or discarded) and stderr captured.
ProcessResult run_process(const std::vector<std::string>& args, bool discard_stdout) {
  ProcessResult result;
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) DUALRS_THROW(IoError, "cannot create a pipe: ", std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[1]);
  if (discard_stdout) posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  std::cout.flush();
  result.spawn_error = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  char buf[4096];
  for (ssize_t got; (got = read(pipe_fds[0], buf, sizeof buf)) != 0;) {
    if (got < 0) {
      if (errno == EINTR) continue;
      break;
    }
    result.err.append(buf, static_cast<std::size_t>(got));
  }
  close(pipe_fds[0]);
  if (result.spawn_error != 0) return result;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string last_line(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  const auto pos = text.rfind('\n');
  return pos == std::string::npos ? text : text.substr(pos + 1);
}

// analysis/dualrs_plots.py: $DUALRS_ANALYSIS_DIR, else next to the executable or up to three
// folders above it (build/dualrs in a checkout), an installed share/dualrs/analysis, else the
// source tree this binary was built from.
std::string find_script() {
  if (const char* dir = std::getenv("DUALRS_ANALYSIS_DIR"); dir != nullptr && *dir != '\0') {
    const fs::path path = fs::path(dir) / kScript;
    if (!fs::is_regular_file(path)) {
      DUALRS_THROW(IoError, "DUALRS_ANALYSIS_DIR=", dir, " holds no ", kScript);
    }
    return path.string();
  }
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path dir = exe.parent_path();
    for (int up = 0; up < 4 && !dir.empty(); ++up, dir = dir.parent_path()) {
      candidates.push_back(dir / "analysis" / kScript);
      candidates.push_back(dir / "share" / "dualrs" / "analysis" / kScript);
      if (dir == dir.root_path()) break;
    }
  }
  candidates.push_back(fs::path(DUALRS_SOURCE_DIR) / "analysis" / kScript);
  std::string tried;
  for (const auto& c : candidates) {
    if (fs::is_regular_file(c)) return c.string();
    tried += (tried.empty() ? "" : ", ") + c.string();
  }
  DUALRS_THROW(IoError, "cannot find analysis/", kScript, " (looked at ", tried,
               "); set DUALRS_ANALYSIS_DIR to the folder that holds it");
}

// A Python 3 that imports numpy, h5py and matplotlib: $DUALRS_PYTHON, else python3 on PATH,
// else Debian's /usr/bin/python3.
std::string find_python() {
  std::vector<std::string> candidates;
  if (const char* py = std::getenv("DUALRS_PYTHON"); py != nullptr && *py != '\0') candidates = {py};
  else candidates = {"python3", "/usr/bin/python3"};
  std::string tried;
  for (const auto& python : candidates) {
    const ProcessResult probe = run_process({python, "-c", "import numpy, h5py, matplotlib"}, true);
    if (probe.spawn_error == 0 && probe.exit_code == 0) return python;
    std::string why = probe.spawn_error != 0 ? std::strerror(probe.spawn_error) : last_line(probe.err);
    tried += (tried.empty() ? "" : "; ") + python + ": " + why;
  }
  DUALRS_THROW(Error, "no Python 3 with numpy, h5py and matplotlib (", tried,
               "); install Debian's python3-matplotlib python3-h5py python3-numpy (scripts/install-deps.sh) "
               "or set DUALRS_PYTHON");
}

}  // namespace

namespace {
void plot_on_this_rank(const std::vector<std::string>& inputs, const PlotConfig& plot, const std::string& out_dir,
                       Verbosity verbosity) {
  if (inputs.empty()) throw ConfigError("command line", "inputs", "no run folder or result files given");
  for (const auto& input : inputs) {
    if (!fs::exists(input)) DUALRS_THROW(IoError, "no such file or folder: ", input);
  }
  std::string formats;
  for (const auto& f : plot.formats) formats += (formats.empty() ? "" : ",") + f;
  const std::string script = find_script();
  const std::string python = find_python();
  io::ensure_directory(out_dir);
  // Options as `--name=value`, then `--`, then the inputs: a folder name that starts with '-'
  // is an input to the script, never one of its options (no shell is involved).
  std::vector<std::string> args = {python, script, "--out=" + out_dir, "--convention=" + to_string(plot.convention),
                                   "--formats=" + formats};
  if (verbosity == Verbosity::kQuiet) args.push_back("--quiet");
  args.push_back("--");
  args.insert(args.end(), inputs.begin(), inputs.end());
  const ProcessResult result = run_process(args, false);
  if (result.spawn_error != 0) DUALRS_THROW(IoError, "cannot run ", python, ": ", std::strerror(result.spawn_error));
  if (result.exit_code == kExitMissingModule) DUALRS_THROW(Error, last_line(result.err));
  if (result.exit_code != 0) {
    DUALRS_THROW(DataError, script, " failed (exit ", result.exit_code, "): ", last_line(result.err));
  }
  if (verbosity != Verbosity::kQuiet) std::cerr << result.err;
}

class PlotStage : public Stage {
 public:
  std::string name() const override { return "plot"; }
  std::string summary() const override {
    return "figures of a run (accuracy vs radius, sigma analyses) as PNG/PDF + JSON, via analysis/";
  }
  HelpText help() const override {
    return {"RUN_DIR [MORE...] [--out DIR] [--convention C] [--formats F]",
            "Draws the figures of a run with analysis/dualrs_plots.py (Python 3 with matplotlib and h5py;\n"
            "$DUALRS_PYTHON picks the interpreter, $DUALRS_ANALYSIS_DIR the script's folder):\n"
            "certified accuracy vs radius for every method (Dual RS paper Fig. 3); ECDFs of Delta R_c and\n"
            "Delta R_sigma (Fig. 5); the distribution of the optimal sigma (Fig. 1); the estimator's sigma\n"
            "choice vs the optimal sigma (confusion matrix). Each figure is written as PNG and PDF with a\n"
            "JSON sidecar listing its series; figures.json indexes them and says why any was skipped.",
            "dualrs plot runs/mnist_dual_rs --out runs/mnist_dual_rs/figures --convention strict"};
  }
  std::string config_help() const override { return "experiment config whose /plot section gives convention and formats (flags override it)"; }
  std::string inputs_help() const override {
    return "run folder (searched for certify.h5, shards/ and labels.h5), stage folders or result files (positional)";
  }
  std::string out_help() const override { return "output folder (default: the first input folder's figures/)"; }
  std::vector<std::string> sections() const override { return {"plot"}; }
  std::vector<Flag> flags() const override {
    return {
        {"convention", FlagType::kString, "",
         "certified accuracy counts radius >= r (inclusive, default) or radius > r (strict, Dual RS paper)"},
        {"formats", FlagType::kString, "", "comma list of png, pdf, svg (default png,pdf)"},
    };
  }
  StageTraits traits() const override {
    StageTraits t;
    t.root_only = true;
    t.config = ConfigUse::kOptional;
    t.takes_inputs = true;
    t.out_optional = true;
    t.slurm_template = "table";
    return t;
  }
  void validate(const ExperimentConfig& config, const std::vector<std::string>& inputs,
                std::vector<ConfigIssue>& issues) const override {
    if (inputs.empty()) issues.push_back({"/inputs", "a plot stage needs inputs"});
    collect_issues(issues, [&] { config.plot(); });
  }
  void run(StageContext& ctx, const StageRun& run) const override {
    PlotConfig plot;
    std::string out = run.out_dir;
    ctx.agreed([&] {
      if (run.inputs.empty()) throw ConfigError("command line", "inputs", "no run folder given (see 'dualrs plot --help')");
      plot = run.config.plot();
    if (run.args.count("convention")) plot.convention = parse_table_convention(run.args.at("convention"), "--convention", "command line");
    if (plot.convention == TableConvention::kBoth) {
      throw ConfigError("command line", "--convention", "must be inclusive or strict, got 'both'");
    }
    if (run.args.count("formats")) {
      plot.formats = {};
      std::string text = run.args.at("formats");
      for (std::size_t start = 0; start <= text.size();) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        const std::string f = text.substr(start, comma - start);
        if (f != "png" && f != "pdf" && f != "svg") {
          throw ConfigError("command line", "--formats", "expected a comma list of png, pdf, svg, got '" + text + "'");
        }
        plot.formats.push_back(f);
        start = comma + 1;
      }
    }
      if (out.empty()) {
        const fs::path first(run.inputs.front());
        out = ((fs::is_directory(first) ? first : first.parent_path()) / "figures").string();
      }
    });
    ctx.on_root([&] { plot_on_this_rank(run.inputs, plot, out, ctx.verbosity); });
  }
};

}  // namespace

std::unique_ptr<Stage> make_plot_stage() { return std::make_unique<PlotStage>(); }

}  // namespace dualrs::pipeline
