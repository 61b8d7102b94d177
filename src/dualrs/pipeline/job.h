#pragma once
/// \file
/// Jobs (jobs/*.json): a job's stages resolved against its config, their fingerprints and
/// completion records, the --dry-run plan, the plan slurm/submit runs, and running the stages
/// in order on this allocation (docs/architecture.md §5).

#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualrs/core/config.h"
#include "dualrs/pipeline/calibration.h"
#include "dualrs/pipeline/stage.h"
#include "dualrs/pipeline/stage_context.h"

namespace dualrs::pipeline {

/// One stage of a job, resolved: its registry entry, config (the job's config with the
/// stage's `set` applied, `${out}` substituted), inputs, folder and fingerprint.
struct JobStage {
  std::string name;                ///< the job's name for the stage (its folder)
  std::string command;             ///< the registry stage it runs, e.g. "certify"
  const Stage* stage = nullptr;    ///< the registry entry of `command`
  ExperimentConfig config;
  std::vector<std::string> inputs;
  std::string dir;                 ///< absolute output folder
  /// SHA-256 over this stage's sections and inputs and every earlier stage's fingerprint:
  /// a changed upstream stage re-runs everything after it.
  std::string fingerprint;
  nlohmann::json slurm;            ///< the stage's resources for slurm/submit; run ignores them
};

/// Alternating training (DualRS §5.2.2, §E.2; docs/method.md §8): the job's stage entries with
/// the round — the first label stage through the first finetune after it (with a
/// train-estimator and an estimate-sigma between) — repeated `rounds` times. Round r's copies are
/// named `<name>_round<r>` and read each other's folders; their label and finetune stages use
/// the classifier round r−1 fine-tuned (/model/checkpoint or /model/torchscript, as later stages
/// name it). Later stages that use the fine-tuned classifier are rewired to the last round's
/// folders (classifier, estimator, σ estimates); the others keep round 1's. `pointers` receives
/// each returned entry's origin ("/stages/3", "/stages/3 (round 2)"). rounds ≤ 1: unchanged.
/// \throws ConfigError at /dual/rounds when rounds > 1 and the job has no such round.
nlohmann::json expand_rounds(const nlohmann::json& stages, int rounds, std::vector<std::string>& pointers);

/// Reads, validates and resolves `job_path` with `${out}` = `out_dir`, its stages expanded by
/// /dual/rounds of its config file (expand_rounds). Every stage's config is checked
/// (Stage::validate) before any work starts.
/// \throws ConfigError listing every problem, each with the stage's pointer (/stages/N ...).
std::vector<JobStage> plan_job(const std::string& job_path, const std::string& out_dir);

/// The completion record of a stage, `<dir>/stage-<name>.json`.
std::string record_path(const JobStage& stage);
/// True when the stage's completion record holds its current fingerprint.
bool stage_done(const JobStage& stage);

/// What --calibration and --ranks add to the plan.
struct PlanCost {
  const Calibration* calibration = nullptr;  ///< measured rates (calibration.h); nullptr: no projection
  std::string calibration_path;
  int ranks = 1;                             ///< ranks the job will run with
};

/// The --dry-run plan: stages, which are up to date, and their model forward passes; with a
/// calibration also each stage's projected wall time and device-hours at `cost.ranks` ranks,
/// the totals, and a warning for each model whose architecture or device differs from the
/// calibration's. Stages whose plan exceeds `limits` are marked.
void print_plan(std::ostream& os, const std::string& job, const std::string& out_dir, const std::vector<JobStage>& stages,
                const PlanLimits& limits = {}, const PlanCost& cost = {});

/// Whether emit_plan marks stages with a matching completion record "done".
enum class Rerun { kSkipDone, kAll };

/// Writes the plan slurm/submit turns into sbatch jobs (data_schemas/slurm_plan.md): per stage
/// its resolved config, the completion record to publish when it succeeds, and one line of
/// plan.tsv. \throws ConfigError when a field holds a tab or line break.
void emit_plan(const std::vector<JobStage>& stages, const std::string& plan_dir, Rerun rerun);

/// Collective: runs the job's stages in order, skipping those up to date (unless `force`),
/// writing each stage's completion record and `<out_dir>/job_summary.json`.
/// \throws dist::AgreedFailure, dist::Preempted (a stop request between or inside stages).
/// A stage whose plan exceeds `limits` is refused (ConfigError) before it starts.
void run_job(StageContext& ctx, const std::string& job_path, const std::string& out_dir, bool force,
             const PlanLimits& limits = {});

/// Collective: prints a stage's planned forward passes (its first progress lines; a sharded
/// stage prints them once it holds its folder's lock) and refuses a plan beyond `limits`
/// unless they allow huge plans. `name` names the stage in messages.
/// \throws dist::AgreedFailure (ConfigError naming the stage, the total and the ceiling).
void announce_plan(StageContext& ctx, const std::string& name, const Stage& stage, const ExperimentConfig& config,
                   const PlanLimits& limits);

/// Checks a config or a job file (recognised by its "stages" key) as `dualrs validate` does and
/// returns "<path>: valid config" / "<path>: valid job". \throws ConfigError listing every problem.
std::string validate_file(const std::string& path);

}  // namespace dualrs::pipeline
