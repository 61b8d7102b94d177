// The estimate-sigma stage: the smoothed estimator's sigma choice for every selected example
// (DualRS §5.2.2; docs/method.md §7), sharded over the ranks.

#include <torch/torch.h>

#include <optional>

#include "dualrs/core/error.h"
#include "dualrs/pipeline/model_assembly.h"
#include "dualrs/pipeline/stage.h"
#include "dualrs/io/label_files.h"
#include "dualrs/pipeline/sharded_stage.h"
#include "dualrs/rng/noise.h"
#include "dualrs/smooth/dual.h"

namespace dualrs::pipeline {
using nlohmann::json;

namespace {

void run_estimate_sigma(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  DualConfig dual;
  EstimateSigmaConfig est;
  std::optional<DataSelection> in;
  std::shared_ptr<model::BaseModel> estimator;
  ShardedStage stage;
  ctx.agreed([&] {
    dual = config.dual();
    est = config.estimate_sigma();  // checked there (validate(EstimateSigmaConfig))
    in = load_selection(config, est.selection, "/estimate_sigma/selection");
    const std::shared_ptr<model::DiffusionDenoiser> denoiser = load_denoiser(config, ctx.world);
    estimator = stopping_between_batches(load_estimator(config, dual, denoiser, ctx.world), ctx.signals);
    json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                     {"dual", to_json(dual)}, {"estimate_sigma", to_json(est)}};
    if (denoiser) resolved["denoiser"] = to_json(*config.denoiser());
    add_grid_tables(resolved, est.noise, {dual.sigma_e});
    stage.provenance = stage_provenance("dualrs.sigma_estimates", "estimate-sigma", resolved, est.seed, kRngLayoutVersion);
    record_world(ctx, stage.provenance);
  });
  io::SigmaEstimates rows;  // of the shard being computed
  rows.sigma_candidates = dual.sigma_candidates;
  rows.sigma_e = dual.sigma_e;
  rows.n = est.n;
  rows.dataset = in->dataset.name();
  rows.split = est.selection.split;
  const io::SigmaEstimates empty = rows;
  const auto s = static_cast<std::int64_t>(dual.sigma_candidates.size());
  const smooth::ExampleFn examples = example_fn(*in);
  stage.command = "estimate-sigma";
  stage.schema = "dualrs.sigma_estimates";
  stage.indices = in->indices;
  stage.shard_size = est.shard_size;
  // Several examples' copies share a forward of batch_size rows (docs/method.md §14).
  const auto count = static_cast<std::int64_t>(in->indices.size());
  ExampleGroups<std::pair<smooth::Example, smooth::SigmaVote>> groups(
      count, est.shard_size, examples_per_forward(est.batch_size, est.n), [&](std::int64_t begin, std::int64_t end) {
        const std::vector<smooth::Example> group = examples_between(examples, begin, end);
        const std::vector<smooth::SigmaVote> votes =
            smooth::estimate_sigma_examples(*estimator, group, dual.sigma_e, est.n, est.batch_size, est.seed, s,
                                            est.noise);
        std::vector<std::pair<smooth::Example, smooth::SigmaVote>> out;
        for (std::size_t i = 0; i < group.size(); ++i) out.emplace_back(group[i], votes[i]);
        return out;
      });
  stage.compute = [&](std::int64_t position) {
    const auto& [ex, vote] = groups.at(position);
    rows.idx.push_back(ex.idx);
    rows.label.push_back(ex.label);
    rows.sigma_index.push_back(vote.sigma_index);
    rows.counts.insert(rows.counts.end(), vote.votes.begin(), vote.votes.end());
    rows.non_finite.push_back(vote.non_finite);
  };
  stage.write_shard = [&](const Shard&, const std::string& path, const io::Provenance& p) {
    io::write_sigma_estimates(path, rows, p);
    rows = empty;
  };
  stage.discard = [&] {
    rows = empty;
    groups.reset();
  };
  run_sharded_stage(ctx, out_dir, stage);
}


class EstimateSigmaStage : public Stage {
 public:
  std::string name() const override { return "estimate-sigma"; }
  std::string summary() const override { return "the smoothed estimator's sigma choice for each example"; }
  HelpText help() const override {
    return {"--config CONFIG --out DIR [overrides]",
            "The smoothed estimator's sigma for every selected example (default: the train split): the\n"
            "majority of n votes at sigma_e, ties -> smaller sigma. Feeds finetune (DualRS §5.2.2).",
            "dualrs estimate-sigma -c configs/mnist_dual.json -o runs/sigma --estimator runs/estimator/estimator.pt"};
  }
  std::string config_help() const override { return "/dataset, /dual, /estimate_sigma"; }
  std::string out_help() const override {
    return "output folder: sigma_estimates.h5 (data_schemas/labels.h5.md), merged from shards/shard-NNNNN.h5; re-running resumes";
  }
  std::vector<std::string> outputs() const override {
    return {"sigma_estimates.h5", "shards", "logs", "dualrs.lock"};
  }
  std::vector<std::string> sections() const override { return {"dataset", "dual", "estimate_sigma", "denoiser"}; }
  std::vector<Flag> flags() const override {
    return {
      {"n", FlagType::kInt, "/estimate_sigma/n", "noisy estimator votes per example at sigma_e, >= 1"},
      {"estimator", FlagType::kString, "/dual/estimator/checkpoint", "estimator weights from train-estimator",
       "/dual/estimator/torchscript"},
      {"shard-size", FlagType::kInt, "/estimate_sigma/shard_size", "examples per shard: the unit of work, output and resume, >= 1"},
      {"denoiser", FlagType::kString, "/denoiser/checkpoint", "native denoiser weights from train-denoiser (the config needs a /denoiser section)",
       "/denoiser/torchscript"},
    };
  }
  StageTraits traits() const override {
    StageTraits t;
    t.sharded = true;
    t.slurm_template = "estimate-sigma";
    return t;
  }
  void validate(const ExperimentConfig& config, const std::vector<std::string>&, std::vector<ConfigIssue>& issues) const override {
    collect_issues(issues, [&] { config.dual(); config.dataset(); });
    collect_issues(issues, [&] { config.estimate_sigma(); });
  }
  std::vector<ForwardPasses> plan(const ExperimentConfig& config) const override { return estimate_sigma_passes(config); }
  void run(StageContext& ctx, const StageRun& run) const override { run_estimate_sigma(ctx, run.config, run.out_dir); }
};

}  // namespace

std::unique_ptr<Stage> make_estimate_sigma_stage() { return std::make_unique<EstimateSigmaStage>(); }

}  // namespace dualrs::pipeline
