// dualrs run, validate, merge, calibrate, index-dataset and stages: jobs, checks, merging
// shards, cost calibration, the dataset file index and the stage list.

#include <filesystem>
#include <iostream>
#include <optional>

#include "args.h"
#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/io/dir_lock.h"
#include "dualrs/io/provenance.h"
#include "dualrs/io/shard_files.h"
#include "dualrs/pipeline/calibration.h"
#include "dualrs/pipeline/dataset_index.h"
#include "dualrs/pipeline/job.h"
#include "dualrs/pipeline/registry.h"
#include "dualrs/pipeline/sharded_stage.h"

namespace dualrs::app {
namespace fs = std::filesystem;
using nlohmann::json;
using pipeline::say;
using pipeline::warn;

int cmd_run(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()
      ("job", po::value<std::string>()->required(), "job manifest (JSON, data_schemas/job.schema.json), positional")
      ("out,o", po::value<std::string>()->required(),
       "output folder; a stage writes OUT/<stage name>/ (or its 'out') with a completion record "
       "stage-<name>.json, and the job OUT/job_summary.json")
      ("dry-run,n", "print the stage plan (and which stages are up to date) with each stage's model forward passes "
       "(examples x passes per example, from the resolved configs; split sizes are counted without reading pixels, "
       "\"unknown\" when the data is absent) and exit; nothing is run or written")
      ("emit-plan", po::value<std::string>(),
       "write the plan for slurm/submit into this folder and exit: per stage NN-NAME.config.json (its "
       "resolved config), NN-NAME.stage.json (its completion record) and one line of plan.tsv (status "
       "done|pending, slurm resources, the command line running the stage alone); layout in "
       "data_schemas/slurm_plan.md")
      ("force", "re-run every stage, even those whose completion record matches their config")
      ("calibration", po::value<std::string>(),
       "with --dry-run: a calibration.json from 'dualrs calibrate'; the plan then gives each stage's projected "
       "wall time and device-hours from its forward passes at the measured rates")
      ("ranks", po::value<int>()->default_value(1),
       "with --calibration: the ranks (GPUs) the job will run with; the projection divides the passes among them");
  add_plan_options(options);
  add_common_options(options);
  po::positional_options_description positional;
  positional.add("job", 1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm,
                  {"JOB --out DIR [--dry-run | --emit-plan PLAN_DIR] [--force]",
                   "Runs a job's stages in order on this machine. Every stage's config is validated before any\n"
                   "work starts. A stage is skipped when its completion record matches its resolved config and\n"
                   "every earlier stage's (resume); a changed stage re-runs with everything after it.",
                   "dualrs run jobs/mnist_standard_rs.json --out runs/mnist_standard_rs\n"
                   "  dualrs run jobs/imagenet_dual_rs.json --out runs/imagenet --dry-run --calibration calibration.json "
                   "--ranks 128   (device-hours before submitting)\n"
                   "  mpirun -np 4 dualrs run jobs/mnist_dual_rs.json --out runs/mnist_dual_rs   "
                   "(every stage runs with the 4 ranks)\n"
                   "  dualrs run jobs/mnist_dual_rs.json --out runs/mnist_dual_rs --emit-plan /tmp/plan   "
                   "(what slurm/submit runs)"})) {
    return 0;
  }
  StageContext& ctx = *inv.ctx;
  const std::string out_dir = fs::absolute(vm["out"].as<std::string>()).lexically_normal().string();
  const std::string job = vm["job"].as<std::string>();
  pipeline::PlanLimits limits;
  ctx.agreed([&] { limits = plan_limits_from(vm); });
  if (vm.count("emit-plan") || vm.count("dry-run")) {
    std::vector<pipeline::JobStage> stages;
    ctx.agreed([&] { stages = pipeline::plan_job(job, out_dir); });
    ctx.on_root([&] {
      if (vm.count("emit-plan")) {
        const std::string plan_dir = fs::absolute(vm["emit-plan"].as<std::string>()).lexically_normal().string();
        pipeline::emit_plan(stages, plan_dir, vm.count("force") ? pipeline::Rerun::kAll : pipeline::Rerun::kSkipDone);
        std::cout << (fs::path(plan_dir) / "plan.tsv").string() << '\n';
      } else {
        pipeline::PlanCost cost;
        std::optional<pipeline::Calibration> calibration;
        if (vm.count("calibration")) {
          cost.calibration_path = vm["calibration"].as<std::string>();
          calibration = pipeline::read_calibration(cost.calibration_path);
          cost.calibration = &*calibration;
        }
        cost.ranks = vm["ranks"].as<int>();
        if (cost.ranks < 1) throw ConfigError("command line", "--ranks", "must be >= 1, got " + std::to_string(cost.ranks));
        pipeline::print_plan(std::cout, job, out_dir, stages, limits, cost);
      }
    });
    return 0;
  }
  pipeline::run_job(ctx, job, out_dir, vm.count("force") > 0, limits);
  return 0;
}

int cmd_validate(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()("file", po::value<std::string>()->required(),
                        "config (configs/*.json) or job manifest (jobs/*.json; recognised by its 'stages' key)");
  add_common_options(options);
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm,
                  {"FILE",
                   "Checks a config against data_schemas/config.schema.json, or a job against\n"
                   "data_schemas/job.schema.json and every stage's resolved config, without running anything.\n"
                   "Every problem is reported, one line each, with its JSON pointer (e.g. /certify/alpha;\n"
                   "/stages/2 (...) /certify/alpha for a job stage); schema problems first, then the checks a\n"
                   "schema cannot express (sorted Sigma, sigma_e >= max Sigma, increasing radii, ...).\n"
                   "Exit status 0 when valid, 2 when not.",
                   "dualrs validate configs/mnist_dual.json && dualrs validate jobs/mnist_dual_rs.json"})) {
    return 0;
  }
  inv.ctx->on_root([&] { std::cout << pipeline::validate_file(vm["file"].as<std::string>()) << '\n'; });
  return 0;
}

int cmd_merge(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()("dir", po::value<std::string>()->required(),
                        "a sharded stage's output folder, holding shards/shard-NNNNN.h5");
  add_common_options(options);
  po::positional_options_description positional;
  positional.add("dir", 1);
  po::variables_map vm;
  if (!parse_args(inv, options, positional, vm,
                  {"DIR",
                   "Writes the stage's output into DIR from its shards, sorted by example index: labels.h5,\n"
                   "sigma_estimates.h5, certify.h5 + certify.tsv or predict.h5 + predict.tsv. Checks that the\n"
                   "shards share one config and selection and hold every example exactly once; shard files are\n"
                   "only read. The stages merge by themselves unless run with --shard-subset.",
                   "dualrs merge runs/labels   (after the array jobs 'dualrs label ... --shard-subset I/N' are done)"})) {
    return 0;
  }
  StageContext& ctx = *inv.ctx;
  ctx.on_root([&] {
    const std::string dir = vm["dir"].as<std::string>();
    std::string notice;
    io::DirectoryLock lock = io::DirectoryLock::acquire(dir, "dualrs merge", ShardSubset{}, &notice);
    if (!notice.empty()) say(ctx, "merge: %s", notice.c_str());
    const io::MergeReport report = io::merge_shards(dir, "", pipeline::merge_derivations());
    std::string worlds;
    for (std::int64_t w : report.world_sizes) worlds += (worlds.empty() ? "" : ",") + std::to_string(w);
    say(ctx, "merge: %lld examples from %lld shards (written by worlds of %s ranks) -> %s%s",
        static_cast<long long>(report.examples), static_cast<long long>(report.shards), worlds.c_str(),
        report.outputs.front().c_str(), report.up_to_date ? " (already merged from these shards; not rewritten)" : "");
    if (report.non_finite_examples > 0) {
      warn(ctx, "merge: %lld of %lld examples had non-finite logits (NaN/Inf) in %lld noisy copies; they abstain",
           static_cast<long long>(report.non_finite_examples), static_cast<long long>(report.examples),
           static_cast<long long>(report.non_finite_copies));
    }
  });
  return 0;
}

int cmd_stages(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()("json", "print the list as JSON (name, summary, sections, traits, slurm template, GPU mode)");
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm,
                  {"[--json]",
                   "Lists the pipeline stages a job can run, from the stage registry: one line each with its\n"
                   "name, how it runs over the ranks (sharded, training, root), the config sections it reads, the\n"
                   "Slurm template serving it and how its ranks get GPUs (per-task, per-node, none). slurm/submit\n"
                   "reads this list.",
                   "dualrs stages --json"})) {
    return 0;
  }
  inv.ctx->on_root([&] {
    if (vm.count("json")) {
      std::cout << pipeline::stages_json().dump(2) << '\n';
      return;
    }
    std::cout << "#name\tkind\tsections\tslurm_template\tgpus\n";
    for (const auto& entry : pipeline::stages_json()) {
      const std::string kind = entry["sharded"].get<bool>() ? "sharded" : entry["training"].get<bool>() ? "training" : "root";
      std::string sections;
      for (const auto& s : entry["sections"]) sections += (sections.empty() ? "" : ",") + s.get<std::string>();
      const std::string slurm_template = entry["slurm_template"].get<std::string>();
      std::cout << entry["name"].get<std::string>() << '\t' << kind << '\t' << (sections.empty() ? "-" : sections) << '\t'
                << (slurm_template.empty() ? "-" : slurm_template) << '\t' << entry["gpus"].get<std::string>() << '\n';
    }
  });
  return 0;
}

}  // namespace dualrs::app

namespace dualrs::app {

int cmd_calibrate(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()
      ("config,c", po::value<std::string>()->required(), "the config whose models to measure (configs/*.json)")
      ("device", po::value<std::string>(), "run every model on this device (cpu, cuda, cuda:N) instead of its configured one")
      ("out,o", po::value<std::string>()->default_value("calibration.json"), "the calibration file to write")
      ("seconds", po::value<double>()->default_value(2.0), "time per measurement, after one warm-up batch");
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm,
                  {"-c CONFIG [--device D] [-o calibration.json]",
                   "Measures on this machine the forward throughput (noisy copies per second) of every model the\n"
                   "config names - classifier, Dual RS estimator, experts, denoiser - in the form the inference\n"
                   "stages run (frozen unless 'optimize' is false) at /certify/batch_size, the training throughput\n"
                   "(forward + backward) of the native classifier and estimator at their training batch sizes, and\n"
                   "the dataset loader's images/s, and writes them as JSON. 'dualrs run JOB --dry-run --calibration\n"
                   "FILE --ranks K' then projects every stage's wall time and device-hours. A model whose checkpoint\n"
                   "a job writes later is measured with fresh weights (the speed does not depend on their values).\n"
                   "Run it on one node of the kind the job will use (one GPU: --device cuda).",
                   "dualrs calibrate -c configs/imagenet_dual.json --device cuda -o calibration.json"})) {
    return 0;
  }
  StageContext& ctx = *inv.ctx;
  ctx.on_root([&] {
    const ExperimentConfig config = ExperimentConfig::load(vm["config"].as<std::string>());
    const pipeline::Calibration c = pipeline::measure_calibration(
        config, vm.count("device") ? vm["device"].as<std::string>() : "", vm["seconds"].as<double>(),
        [&](const std::string& line) { say(ctx, "%s", line.c_str()); });
    const std::string out = vm["out"].as<std::string>();
    io::write_file_atomic(out, pipeline::to_json(c).dump(2) + "\n");
    say(ctx, "calibrate: wrote %s", out.c_str());
  });
  return 0;
}

int cmd_index_dataset(const Invocation& inv) {
  po::options_description options("options");
  options.add_options()
      ("config,c", po::value<std::string>()->required(), "the config whose /dataset to index (format imagenet_folder)")
      ("out,o", po::value<std::string>()->required(),
       "the output folder of the job or stage that will read the dataset: the index is written to "
       "OUT/dataset_index/imagenet-<key>.tsv")
      ("check", "only check: exit 0 when the index is fresh, 1 when it is missing, stale or corrupt (nothing written)");
  add_common_options(options);
  po::variables_map vm;
  if (!parse_args(inv, options, {}, vm,
                  {"-c CONFIG -o OUT [--check]",
                   "Lists an ImageNet folder once and writes its file index next to the outputs, where 'dualrs run'\n"
                   "and the stages look for it: rank 0 of a job then only compares the index with the tree (one stat\n"
                   "per folder, no listing) and the other ranks read the file, instead of every rank listing the\n"
                   "1.33 M files of ILSVRC-2012. A job makes the index itself when there is none; run this beforehand\n"
                   "(one task) to keep the listing out of the job's time. A stale index (a file added, removed or\n"
                   "renamed since), a corrupt one or one of another dataset is rebuilt.",
                   "dualrs index-dataset -c configs/imagenet_dual.json -o runs/imagenet_dual"})) {
    return 0;
  }
  int code = 0;
  StageContext& ctx = *inv.ctx;
  ctx.on_root([&] {
    const ExperimentConfig config = ExperimentConfig::load(vm["config"].as<std::string>());
    const DatasetConfig dataset = config.dataset();
    if (dataset.format != DatasetFormat::kImagenetFolder) {
      throw ConfigError(config.source(), "/dataset/format",
                        "index-dataset indexes imagenet_folder datasets; this one is " + to_string(dataset.format) +
                            " (read without listing folders)");
    }
    const std::string path = pipeline::dataset_index_path(dataset, vm["out"].as<std::string>());
    if (vm.count("check")) {
      const pipeline::DatasetIndexFile file = pipeline::read_dataset_index(path, dataset);
      std::string problem = file.problem;
      if (file.list && file.stamp_sha256 != io::sha256_hex(data::imagenet_tree_stamp(dataset))) {
        problem = "stale: the tree changed since the index was made (" + file.created_utc + ")";
      }
      if (problem.empty()) {
        std::cout << path << ": fresh, " << file.list->size() << " files\n";
      } else {
        std::cout << path << ": " << problem << '\n';
        code = 1;
      }
      return;
    }
    const pipeline::DatasetIndexOutcome outcome = pipeline::refresh_dataset_index(dataset, path);
    if (outcome.action == "rebuilt") warn(ctx, "%s was not used (%s); rebuilt it", path.c_str(), outcome.reason.c_str());
    std::cout << path << ": " << outcome.action << ", " << outcome.list->size() << " files in " << outcome.list->folders.size()
              << " folders (" << outcome.seconds << " s)\n";
  });
  return code;
}

}  // namespace dualrs::app
