// The label stage: per-sigma radius labels R_c(x, sigma_i) for estimator training (DualRS
// §5.2.1; docs/method.md §5), sharded over the ranks.

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "dualrs/core/error.h"
#include "dualrs/pipeline/model_assembly.h"
#include "dualrs/pipeline/stage.h"
#include "dualrs/core/dual.h"
#include "dualrs/io/label_files.h"
#include "dualrs/pipeline/sharded_stage.h"
#include "dualrs/rng/noise.h"
#include "dualrs/smooth/dual.h"

namespace dualrs::pipeline {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void run_label(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  DualConfig dual;
  LabelConfig label;
  std::optional<DataSelection> in;
  std::optional<ClassifierSet> classifiers;
  ShardedStage stage;
  ctx.agreed([&] {
    dual = config.dual();
    label = config.label();  // checked there (validate(LabelConfig))
    in = load_selection(config, label.selection, "/label/selection");
    const std::shared_ptr<model::DiffusionDenoiser> denoiser = load_denoiser(config, ctx.world);
    classifiers = load_classifiers(config, dual, in->dataset.num_classes(), denoiser, ctx.world);
    stop_between_batches(*classifiers, ctx.signals);
    json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                     {"dual", to_json(dual)}, {"label", to_json(label)}};
    if (!dual.routing()) resolved["model"] = to_json(config.model());
    if (denoiser) resolved["denoiser"] = to_json(*config.denoiser());
    add_grid_tables(resolved, label.noise, dual.sigma_candidates);
    stage.provenance = stage_provenance("dualrs.labels", "label", resolved, label.seed, kRngLayoutVersion);
    record_world(ctx, stage.provenance);
  });
  // The rows of the shard being computed.
  io::LabelSet rows;
  rows.sigma_candidates = dual.sigma_candidates;
  rows.n = label.n;
  rows.alpha = label.alpha;
  rows.dataset = in->dataset.name();
  rows.split = label.selection.split;
  rows.routing = dual.routing();
  const io::LabelSet empty = rows;
  const smooth::PerSigmaSettings ps = smooth::per_sigma_settings(dual, label);
  const smooth::ExampleFn examples = example_fn(*in);
  stage.command = "label";
  stage.schema = "dualrs.labels";
  stage.indices = in->indices;
  stage.shard_size = label.shard_size;
  // Several examples' copies at σ_i share a forward of batch_size rows (docs/method.md §14).
  const auto count = static_cast<std::int64_t>(in->indices.size());
  ExampleGroups<std::pair<smooth::Example, smooth::LabelRow>> groups(
      count, label.shard_size, examples_per_forward(label.batch_size, label.n), [&](std::int64_t begin, std::int64_t end) {
        const std::vector<smooth::Example> group = examples_between(examples, begin, end);
        const std::vector<smooth::LabelRow> labelled = smooth::label_examples(classifiers->pool, group, ps, label.alpha);
        std::vector<std::pair<smooth::Example, smooth::LabelRow>> out;
        for (std::size_t i = 0; i < group.size(); ++i) out.emplace_back(group[i], labelled[i]);
        return out;
      });
  stage.compute = [&](std::int64_t position) {
    const auto& [ex, row] = groups.at(position);
    rows.idx.push_back(ex.idx);
    rows.label.push_back(ex.label);
    rows.radii.insert(rows.radii.end(), row.radii.begin(), row.radii.end());
    rows.top_count.insert(rows.top_count.end(), row.top_count.begin(), row.top_count.end());
    rows.non_finite.insert(rows.non_finite.end(), row.non_finite.begin(), row.non_finite.end());
    const LabelRowSummary summary = summarize_label_row(row.radii);
    rows.best.push_back(summary.best);
    rows.max_radius.push_back(summary.max_radius);
  };
  stage.write_shard = [&](const Shard&, const std::string& path, const io::Provenance& p) {
    io::write_labels(path, rows, p);  // weights are computed over all rows when merging
    rows = empty;
  };
  stage.discard = [&] {
    rows = empty;
    groups.reset();
  };
  if (!run_sharded_stage(ctx, out_dir, stage)) return;
  ctx.on_root([&] {
    const io::LabelSet labels = io::read_labels((fs::path(out_dir) / "labels.h5").string());
    const auto kept = std::count_if(labels.best.begin(), labels.best.end(), [](std::int64_t b) { return b >= 0; });
    say(ctx, "label: %lld of %lld examples have a non-zero radius at some sigma", static_cast<long long>(kept),
        static_cast<long long>(labels.size()));
  });
}


class LabelStage : public Stage {
 public:
  std::string name() const override { return "label"; }
  std::string summary() const override { return "per-sigma radius labels R_c(x, sigma_i) for estimator training (Dual RS)"; }
  HelpText help() const override {
    return {"--config CONFIG --out DIR [overrides]",
            "Per-sigma radius labels for estimator training (DualRS §5.2.1): for every example and every\n"
            "sigma of /dual/sigma_candidates, N noisy votes give R_c(x, sigma) = sigma * Phi^-1(p) when the\n"
            "top class is the true one and its Clopper-Pearson bound p >= 0.5, else 0; plus the best sigma\n"
            "and the rebalancing weight w_e. With /dual/experts (routing), expert i labels sigma_i.",
            "dualrs label -c configs/mnist_dual.json -o runs/labels --checkpoint runs/base/model.pt\n"
            "  mpirun -np 8 dualrs label -c configs/mnist_dual.json -o runs/labels --expect-world-size 8"};
  }
  std::string config_help() const override { return "/dataset, /model (or /dual/experts), /dual, /label"; }
  std::string out_help() const override {
    return "output folder: labels.h5 (data_schemas/labels.h5.md), merged from shards/shard-NNNNN.h5; re-running resumes";
  }
  std::vector<std::string> outputs() const override {
    return {"labels.h5", "shards", "logs", "dualrs.lock"};
  }
  std::vector<std::string> sections() const override { return {"dataset", "model", "dual", "label", "denoiser"}; }
  std::vector<Flag> flags() const override {
    return {
      {"n", FlagType::kInt, "/label/n", "noisy votes N per (example, sigma), >= 1"},
      {"alpha", FlagType::kDouble, "/label/alpha", "alpha_label of the Clopper-Pearson bound, in (0, 1)"},
      {"batch-size", FlagType::kInt, "/label/batch_size", "noisy copies per forward pass, >= 1"},
      {"checkpoint", FlagType::kString, "/model/checkpoint", "classifier weights from train-base",
       "/model/torchscript"},
      {"split", FlagType::kString, "/label/selection/split", "split to label"},
      {"end", FlagType::kInt, "/label/selection/end", "label the first END examples of the split; -1 = all (default)"},
      {"shard-size", FlagType::kInt, "/label/shard_size", "examples per shard: the unit of work, output and resume, >= 1"},
      {"denoiser", FlagType::kString, "/denoiser/checkpoint", "native denoiser weights from train-denoiser (the config needs a /denoiser section)",
       "/denoiser/torchscript"},
    };
  }
  StageTraits traits() const override {
    StageTraits t;
    t.sharded = true;
    t.slurm_template = "label";
    return t;
  }
  void validate(const ExperimentConfig& config, const std::vector<std::string>&, std::vector<ConfigIssue>& issues) const override {
    collect_issues(issues, [&] { config.dual(); });
    collect_issues(issues, [&] { config.label(); });
    collect_issues(issues, [&] { config.dataset(); });
  }
  std::vector<ForwardPasses> plan(const ExperimentConfig& config) const override { return label_passes(config); }
  void run(StageContext& ctx, const StageRun& run) const override { run_label(ctx, run.config, run.out_dir); }
};

}  // namespace

std::unique_ptr<Stage> make_label_stage() { return std::make_unique<LabelStage>(); }

}  // namespace dualrs::pipeline
