// The certify and predict stages: standard randomized smoothing, Multiscale and Dual RS over a
// dataset selection (Cohen et al. ICML 2019, CERTIFY and PREDICT; DualRS §4; docs/method.md §2-§4, §8, §11).

#include <torch/torch.h>

#include <functional>
#include <optional>

#include "dualrs/core/error.h"
#include "dualrs/data/dataset.h"
#include "dualrs/io/result_files.h"
#include "dualrs/model/base_model.h"
#include "dualrs/pipeline/model_assembly.h"
#include "dualrs/pipeline/sharded_stage.h"
#include "dualrs/pipeline/stage.h"
#include "dualrs/rng/noise.h"
#include "dualrs/smooth/certify.h"
#include "dualrs/smooth/dual.h"

namespace dualrs::pipeline {

namespace {

// Method name written into result files and tables.
std::string method_name(Method method, double sigma, bool routing, const std::string& prefix) {
  if (method == Method::kGlobal && prefix == "dual_rs_classifier_") return prefix + "sigma_" + format_decimal(sigma);
  if (method == Method::kGlobal) return prefix + "global_sigma_" + format_decimal(sigma);
  if (method == Method::kDual) return routing ? "dual_rs_routing" : "dual_rs";
  return routing ? "multiscale_routing" : "multiscale";
}

// "_grid" for grid noise and "_staged" for staged sampling, so rows of one table that differ in
// them have different names (docs/method.md §15, §16); nothing for the defaults.
std::string method_suffix(NoiseKind noise, Sampling sampling) {
  return std::string(noise == NoiseKind::kGrid ? "_grid" : "") + (sampling == Sampling::kStaged ? "_staged" : "");
}

// Every σ a method draws noise at: its global σ, or Σ and (Dual RS) σ_e.
std::vector<double> noise_levels(Method method, double sigma, const DualConfig& dual) {
  if (method == Method::kGlobal) return {sigma};
  std::vector<double> out = dual.sigma_candidates;
  if (method == Method::kDual) out.push_back(dual.sigma_e);
  return out;
}

io::ResultInfo result_info(const std::string& kind, const std::string& method, double sigma, std::int64_t n0,
                           std::int64_t n, double alpha, std::int64_t num_classes, const DataSelection& in,
                           const std::string& split) {
  io::ResultInfo info;
  info.kind = kind;
  info.method = method;
  info.sigma = sigma;
  info.n0 = n0;
  info.n = n;
  info.alpha = alpha;
  info.num_classes = num_classes;
  info.dataset = in.dataset.name();
  info.split = split;
  return info;
}

}  // namespace

namespace {

/// The models a certify/predict method uses, loaded on this rank: the /model classifier
/// (global), or the per-σ pool and, for dual, the estimator.
struct MethodModels {
  ClassifierSet classifiers;
  std::shared_ptr<model::BaseModel> estimator;
};

/// \param sigma, pointer  the global method's σ and its config pointer (for errors).
MethodModels load_method_models(StageContext& ctx, const ExperimentConfig& config, Method method,
                                const DualConfig& dual, std::int64_t num_classes, double sigma, const std::string& pointer) {
  MethodModels m;
  // One denoiser serves every σ, the classifier and the estimator (DDS; docs/method.md §9).
  const std::shared_ptr<model::DiffusionDenoiser> denoiser = load_denoiser(config, ctx.world);
  if (method == Method::kGlobal) {
    m.classifiers.owned.push_back(compose_base(config, load_classifier(config, num_classes, ctx.world),
                                               config.model().input, denoiser, sigma, pointer));
    m.classifiers.owned.back()->set_training(false);
    stop_between_batches(m.classifiers, ctx.signals);
    return m;
  }
  m.classifiers = load_classifiers(config, dual, num_classes, denoiser, ctx.world);
  stop_between_batches(m.classifiers, ctx.signals);
  if (method == Method::kDual) m.estimator = stopping_between_batches(load_estimator(config, dual, denoiser, ctx.world), ctx.signals);
  return m;
}

/// Shards of certify/predict records: each example's record from `compute`, each shard one
/// result file in the layout of the merged one.
template <typename Record>
void run_record_stage(StageContext& ctx, const std::string& out_dir, ShardedStage& stage, const DataSelection& in,
                      const io::ResultInfo& info, const std::function<Record(const smooth::Example&)>& compute) {
  const smooth::ExampleFn examples = example_fn(in);
  std::vector<Record> records;  // of the shard being computed
  stage.schema = "dualrs." + info.kind;
  stage.indices = in.indices;
  stage.compute = [&](std::int64_t position) { records.push_back(compute(examples(position))); };
  stage.write_shard = [&](const Shard&, const std::string& path, const io::Provenance& provenance) {
    io::Hdf5ResultSink sink(path, info, provenance);
    for (const Record& r : records) sink.write(r);
    sink.finish();
    records.clear();
  };
  stage.discard = [&] { records.clear(); };
  run_sharded_stage(ctx, out_dir, stage);
}

}  // namespace

namespace {
// What certify and predict record as their config (and so their shards' resume key): the
// stage's section, the dataset, the /model classifier (none with experts), /dual for the
// per-σ methods and the denoiser.
nlohmann::json resolved_sections(const ExperimentConfig& config, const std::string& section, nlohmann::json values,
                                 Method method, const DualConfig& dual) {
  nlohmann::json resolved = {{"name", config.doc().value("name", "")}, {"dataset", to_json(config.dataset())},
                             {section, std::move(values)}};
  if (!dual.routing()) resolved["model"] = to_json(config.model());
  if (method != Method::kGlobal) resolved["dual"] = to_json(dual);
  if (config.denoiser()) resolved["denoiser"] = to_json(*config.denoiser());
  return resolved;
}

void run_certify(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  std::optional<DataSelection> in;
  MethodModels models;
  CertifyConfig certify;
  DualConfig dual;
  io::ResultInfo info;
  ShardedStage stage;
  ctx.agreed([&] {
    certify = config.certify();  // checked there (validate(CertifyConfig))
    if (certify.method != Method::kGlobal) dual = config.dual();
    in = load_selection(config, certify.selection, "/certify/selection");
    const std::int64_t k = in->dataset.num_classes();
    nlohmann::json resolved = resolved_sections(config, "certify", to_json(certify), certify.method, dual);
    add_grid_tables(resolved, certify.noise, noise_levels(certify.method, certify.sigma, dual));
    info = result_info("certify",
                       !certify.method_name.empty()
                           ? certify.method_name
                           : method_prefix(config) +
                                 method_name(certify.method, certify.sigma, dual.routing(),
                                             certify.streams == NoiseStreams::kDualRsClassifier ? "dual_rs_classifier_" : "") +
                                 method_suffix(certify.noise, certify.sampling),
                       certify.method == Method::kGlobal ? certify.sigma : 0.0, certify.n0, certify.n, certify.alpha, k, *in,
                       certify.selection.split);
    info.noise = to_string(certify.noise);
    info.sampling = to_string(certify.sampling);
    info.streams = to_string(certify.streams);
    if (certify.method != Method::kGlobal) {
      info.sigma_candidates = dual.sigma_candidates;
      if (certify.method == Method::kDual) {
        info.sigma_e = dual.sigma_e;
        info.alpha_e = certify.alpha_e;
        info.alpha_c = certify.alpha_c;
      }
    }
    models = load_method_models(ctx, config, certify.method, dual, k, certify.sigma, "/certify/sigma");
    stage.provenance = stage_provenance("dualrs.certify", "certify", resolved, certify.seed, kRngLayoutVersion);
    record_world(ctx, stage.provenance);
  });
  const smooth::PerSigmaSettings ps = smooth::per_sigma_settings(dual, certify);
  stage.command = "certify";
  stage.shard_size = certify.shard_size;
  run_record_stage<CertifyRecord>(ctx, out_dir, stage, *in, info, [&](const smooth::Example& ex) {
    if (certify.method == Method::kGlobal) {
      return smooth::certify_example(*models.classifiers.owned.front(), ex, certify, certify.sigma_word);
    }
    if (certify.method == Method::kDual) {
      return smooth::dual_certify_example(*models.estimator, models.classifiers.pool, ex,
                                          {ps, dual.sigma_e, certify.alpha_e, certify.alpha_c});
    }
    return smooth::multiscale_certify_example(models.classifiers.pool, ex, ps, certify.alpha, certify.alpha_split);
  });
}

void run_predict(StageContext& ctx, const ExperimentConfig& config, const std::string& out_dir) {
  std::optional<DataSelection> in;
  MethodModels models;
  PredictConfig predict;
  DualConfig dual;
  io::ResultInfo info;
  ShardedStage stage;
  ctx.agreed([&] {
    predict = config.predict();  // checked there (validate(PredictConfig))
    if (predict.method != Method::kGlobal) dual = config.dual();
    in = load_selection(config, predict.selection, "/predict/selection");
    const std::int64_t k = in->dataset.num_classes();
    nlohmann::json resolved = resolved_sections(config, "predict", to_json(predict), predict.method, dual);
    add_grid_tables(resolved, predict.noise, noise_levels(predict.method, predict.sigma, dual));
    info = result_info("predict", method_prefix(config) + method_name(predict.method, predict.sigma, dual.routing(), "predict_") +
                                      method_suffix(predict.noise, Sampling::kFixed),
                       predict.method == Method::kGlobal ? predict.sigma : 0.0, 0, predict.n, predict.alpha, k, *in,
                       predict.selection.split);
    info.noise = to_string(predict.noise);
    models = load_method_models(ctx, config, predict.method, dual, k, predict.sigma, "/predict/sigma");
    stage.provenance = stage_provenance("dualrs.predict", "predict", resolved, predict.seed, kRngLayoutVersion);
    record_world(ctx, stage.provenance);
  });
  const smooth::PerSigmaSettings ps = smooth::per_sigma_settings(dual, predict);
  const DualAlpha dual_alpha = dual_alpha_split(predict.alpha);  // PREDICT splits α evenly (docs/method.md §4)
  stage.command = "predict";
  stage.shard_size = predict.shard_size;
  run_record_stage<PredictRecord>(ctx, out_dir, stage, *in, info, [&](const smooth::Example& ex) {
    if (predict.method == Method::kGlobal) return smooth::predict_example(*models.classifiers.owned.front(), ex, predict);
    if (predict.method == Method::kDual) {
      return smooth::dual_predict_example(*models.estimator, models.classifiers.pool, ex,
                                          {ps, dual.sigma_e, dual_alpha.alpha_e, dual_alpha.alpha_c});
    }
    return smooth::multiscale_predict_example(models.classifiers.pool, ex, ps, predict.alpha, predict.alpha_split);
  });
}


// The selection and model flags certify and predict share.
std::vector<Flag> selection_flags(const std::string& section) {
  const std::string s = "/" + section + "/selection/";
  return {
      {"split", FlagType::kString, s + "split", "split whose examples are used: a name under /dataset/splits (test, train) "
                                                "or 'all' = every example of the dataset"},
      {"begin", FlagType::kInt, s + "begin", "first position in the split's index list, 0-based"},
      {"end", FlagType::kInt, s + "end", "one past the last position; -1 = the end of the split (default)"},
      {"skip", FlagType::kInt, s + "skip", "take every skip-th position of [begin, end), as Cohen's --skip"},
      {"checkpoint", FlagType::kString, "/model/checkpoint", "native classifier weights from train-base or finetune",
       "/model/torchscript"},
      {"torchscript", FlagType::kString, "/model/torchscript", "TorchScript classifier: [B,C,H,W] in [0,1] -> [B,K] logits",
       "/model/checkpoint"},
      {"estimator", FlagType::kString, "/dual/estimator/checkpoint", "dual: the variance estimator's weights from train-estimator",
       "/dual/estimator/torchscript"},
      {"denoiser", FlagType::kString, "/denoiser/checkpoint", "native denoiser weights from train-denoiser (the config "
                                                              "needs a /denoiser section)",
       "/denoiser/torchscript"},
  };
}

// What certify and predict check before a job runs: the sections their method needs.
void validate_method(const ExperimentConfig& config, Method method, std::vector<ConfigIssue>& issues) {
  collect_issues(issues, [&] {
    if (method != Method::kGlobal) config.dual();
    config.model();
    config.dataset();
  });
}

class CertifyStage : public Stage {
 public:
  std::string name() const override { return "certify"; }
  std::string summary() const override { return "certify examples with randomized smoothing (HDF5 + Cohen-style TSV)"; }
  HelpText help() const override {
    return {"--config CONFIG --out DIR [overrides]",
            "CERTIFY (Cohen et al., ICML 2019) for every selected example: n0 noisy copies select the\n"
            "class, n fresh copies bound its probability (one-sided Clopper-Pearson at alpha); abstain\n"
            "(prediction -1, radius 0) when p_a_lower < 0.5, else the l2 radius sigma * Phi^-1(p_a_lower).\n"
            "Settings come from the config; the flags below override single values.",
            "dualrs certify -c configs/mnist.json -o runs/cert --checkpoint runs/base/model.pt --sigma 0.5 "
            "--n 1000 --end 100\n  mpirun -np 4 dualrs certify -c configs/mnist.json -o runs/cert "
            "--expect-world-size 4   (the shards are split over the 4 ranks)"};
  }
  std::string config_help() const override { return "/dataset, /model, /certify, and /dual for dual and multiscale"; }
  std::string out_help() const override {
    return "output folder: certify.h5 (data_schemas/certify_results.h5.md) and certify.tsv (Cohen's format), merged "
           "from shards/shard-NNNNN.h5 (data_schemas/shards.md); re-running resumes";
  }
  std::vector<std::string> outputs() const override {
    return {"certify.h5", "certify.tsv", "shards", "logs", "dualrs.lock"};
  }
  std::vector<std::string> sections() const override { return {"dataset", "model", "dual", "certify", "denoiser"}; }
  std::vector<Flag> flags() const override {
    std::vector<Flag> flags = {
        {"method", FlagType::kString, "/certify/method", "global (standard RS at --sigma), dual (Dual RS: estimator at "
                                                         "sigma_e, then the classifier at the chosen sigma of Sigma) or "
                                                         "multiscale (cascade over Sigma)"},
        {"sigma", FlagType::kDouble, "/certify/sigma", "global: noise level sigma, std of the Gaussian in [0,1]-pixel units, > 0"},
        {"n0", FlagType::kInt, "/certify/n0", "noisy copies that select the class, >= 1"},
        {"n", FlagType::kInt, "/certify/n", "fresh noisy copies that bound p_A, >= 1"},
        {"alpha", FlagType::kDouble, "/certify/alpha", "failure probability of each certificate, in (0, 1); dual splits "
                                                       "it into alpha_e + alpha_c = alpha/2 each"},
        {"batch-size", FlagType::kInt, "/certify/batch_size", "noisy copies per forward pass, >= 1 (memory, not results: "
                                                              "the noise does not depend on it)"},
        {"seed", FlagType::kUInt, "/certify/seed", "noise seed, integer in [0, 2^53)"},
        {"shard-size", FlagType::kInt, "/certify/shard_size", "examples per shard: the unit of work, output and resume, >= 1"},
        {"noise", FlagType::kString, "/certify/noise", "gaussian (float noise, default) or grid (the Gaussian rounded to "
                                                       "the 1/255 pixel grid: sound in floating point; 8-bit images only)"},
        {"method-name", FlagType::kString, "/certify/method_name", "name written into the result file and its table "
                                                                   "row (default: from method, sigma, noise, sampling)"},
        {"sampling", FlagType::kString, "/certify/sampling", "fixed (Cohen's n copies, default) or staged (looks with early "
                                                             "stops, fewer forward passes; see /certify/staged)"},
        {"streams", FlagType::kString, "/certify/streams", "global: global (own noise, default) or dual_rs_classifier (the "
                                                           "copies Dual RS's classifier stage draws at this sigma of "
                                                           "/dual/sigma_candidates, at alpha_c: R_c at every sigma for "
                                                           "Delta R_c and the oracle)"},
    };
    for (Flag& f : selection_flags("certify")) flags.push_back(std::move(f));
    return flags;
  }
  StageTraits traits() const override {
    StageTraits t;
    t.sharded = true;
    t.slurm_template = "certify";
    return t;
  }
  void validate(const ExperimentConfig& config, const std::vector<std::string>&, std::vector<ConfigIssue>& issues) const override {
    Method method = Method::kGlobal;
    collect_issues(issues, [&] { method = config.certify().method; });
    validate_method(config, method, issues);
  }
  std::vector<ForwardPasses> plan(const ExperimentConfig& config) const override { return certify_passes(config); }
  void run(StageContext& ctx, const StageRun& run) const override { run_certify(ctx, run.config, run.out_dir); }
};

class PredictStage : public Stage {
 public:
  std::string name() const override { return "predict"; }
  std::string summary() const override { return "predict examples with the smoothed classifier (PREDICT)"; }
  HelpText help() const override {
    return {"--config CONFIG --out DIR [overrides]",
            "PREDICT (Cohen et al., ICML 2019) for every selected example: the top class of n noisy\n"
            "copies, or abstain (-1) when a binomial test cannot separate it from the runner-up at alpha.",
            "dualrs predict -c configs/mnist.json -o runs/pred --checkpoint runs/base/model.pt --sigma 0.25"};
  }
  std::string config_help() const override { return "/dataset, /model, /predict, and /dual for dual and multiscale"; }
  std::string out_help() const override {
    return "output folder: predict.h5 (data_schemas/certify_results.h5.md) and predict.tsv, merged from "
           "shards/shard-NNNNN.h5; re-running resumes";
  }
  std::vector<std::string> outputs() const override {
    return {"predict.h5", "predict.tsv", "shards", "logs", "dualrs.lock"};
  }
  std::vector<std::string> sections() const override { return {"dataset", "model", "dual", "predict", "denoiser"}; }
  std::vector<Flag> flags() const override {
    std::vector<Flag> flags = {
        {"method", FlagType::kString, "/predict/method", "global, dual or multiscale (as for certify)"},
        {"sigma", FlagType::kDouble, "/predict/sigma", "global: noise level sigma in [0,1]-pixel units, > 0"},
        {"n", FlagType::kInt, "/predict/n", "noisy copies that vote, >= 1"},
        {"alpha", FlagType::kDouble, "/predict/alpha", "abstain unless the two-sided binomial test of top-1 vs top-2 "
                                                       "votes has p-value <= alpha, in (0, 1)"},
        {"batch-size", FlagType::kInt, "/predict/batch_size", "noisy copies per forward pass, >= 1"},
        {"seed", FlagType::kUInt, "/predict/seed", "noise seed, integer in [0, 2^53)"},
        {"shard-size", FlagType::kInt, "/predict/shard_size", "examples per shard: the unit of work, output and resume, >= 1"},
        {"noise", FlagType::kString, "/predict/noise", "gaussian (default) or grid (rounded to the 1/255 pixel grid)"},
    };
    for (Flag& f : selection_flags("predict")) flags.push_back(std::move(f));
    return flags;
  }
  StageTraits traits() const override {
    StageTraits t;
    t.sharded = true;
    t.slurm_template = "certify";
    return t;
  }
  void validate(const ExperimentConfig& config, const std::vector<std::string>&, std::vector<ConfigIssue>& issues) const override {
    Method method = Method::kGlobal;
    collect_issues(issues, [&] { method = config.predict().method; });
    validate_method(config, method, issues);
  }
  std::vector<ForwardPasses> plan(const ExperimentConfig& config) const override { return predict_passes(config); }
  void run(StageContext& ctx, const StageRun& run) const override { run_predict(ctx, run.config, run.out_dir); }
};

}  // namespace

std::unique_ptr<Stage> make_certify_stage() { return std::make_unique<CertifyStage>(); }
std::unique_ptr<Stage> make_predict_stage() { return std::make_unique<PredictStage>(); }

}  // namespace dualrs::pipeline
