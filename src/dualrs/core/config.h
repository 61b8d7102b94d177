#pragma once
/// \file
/// Typed, validated experiment configuration (docs/style.md §1: one concern per struct).
/// A config is a JSON document checked against `data_schemas/config.schema.json` (embedded
/// at build time, validated with valijson); every problem is reported at once with its JSON
/// pointer. Typed sections are then read with their defaults filled in, and `to_json` gives
/// the resolved values recorded in every output's provenance.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualrs/core/noise_kind.h"

#include "dualrs/core/diffusion_schedule.h"
#include "dualrs/core/dual.h"

namespace dualrs {
inline namespace core {

// ---- Named choices of a config, parsed once ------------------------------------------------
// Each is read from its string in one place (the typed readers below, core/config.cpp), which
// throws a ConfigError naming the JSON pointer and the allowed values; `to_string` gives the
// config's spelling back, which is what provenance records. ScheduleKind (`cosine`, `linear`)
// is declared with the schedules in core/diffusion_schedule.h and AlphaSplit (`bonferroni`,
// `reference`) with the cascade in core/dual.h.

/// /certify/method and /predict/method: standard RS at one σ [Cohen], Dual RS [DualRS §4] or
/// the Multiscale cascade [Multiscale] (docs/method.md §3, §4, §11).
enum class Method { kGlobal, kDual, kMultiscale };
/// /dataset/format (data_schemas/datasets.md).
enum class DatasetFormat { kMnistIdx, kCifar10Bin, kImagenetFolder };
/// /table/convention and /plot/convention: certified at r means radius >= r (inclusive,
/// Cohen's script), > r (strict, the Dual RS tables), or both tables (docs/method.md §10.1).
enum class TableConvention { kInclusive, kStrict, kBoth };
/// /train_estimator/radius_weight: how the consistency term of an example is weighted
/// [DualRS §5.2; docs/method.md §6].
enum class RadiusWeight {
  kNone,    ///< w_r = 1
  kStrong,  ///< w_r = R_c(x, σ̂)/C, σ̂ = the largest σ the estimator predicts among the m copies
  kWeak,    ///< w_r = R_c(x, σ̂)/C, σ̂ = the smallest σ the estimator predicts among the m copies
};
/// /…/input_range: the value range a classifier takes, "[0,1]" (contract `classifier`) or
/// "[-1,1]" (model space, contract `classifier-pm1`) [DDS; docs/method.md §9].
enum class InputRange { kZeroOne, kMinusOneOne };
/// The kind of a /…/device: "cpu", or "cuda" ("cuda" = this rank's GPU, "cuda:N" = GPU N).
enum class DeviceKind { kCpu, kCuda };
/// /certify/sampling: Cohen's fixed n, or cumulative looks with early stops (docs/method.md §16).
enum class Sampling { kFixed, kStaged };
/// /train_estimator/loss: the estimator's targets [DualRS §5.2.1, Fig. 5; docs/method.md §6].
/// "soft_ce": soft labels softmax_i R_c(x, σ_i) (the paper's); "ce": one-hot at the best σ
/// (largest label radius, ties → the smaller σ), the paper's hard-label ablation.
enum class EstimatorTarget { kSoftCe, kCe };
/// /certify/streams: which noise streams a global-σ CERTIFY draws (docs/method.md §10.2).
/// "global": its own (σ word 0). "dual_rs_classifier": the copies Dual RS's classifier stage
/// draws at this σ of Σ (σ word = its index in /dual/sigma_candidates), at level α_c, so a run
/// at every σ_i gives R_c(x, σ_i) on the very counts Dual RS used at its chosen σ.
enum class NoiseStreams { kGlobal, kDualRsClassifier };
/// /model/precision (also /dual/estimator, /dual/experts/i, /denoiser): the floating-point type
/// a model's inference runs in (docs/method.md §18). Inputs are cast to it and logits back to
/// float32; certificates stay sound at any precision (the smoothed classifier is built over
/// whatever function the base classifier computes). fp16 needs a CUDA device.
enum class Precision { kFp32, kBf16, kFp16 };
// NoiseKind (/…/noise: "gaussian", "grid") is declared in core/noise_kind.h for the RNG layer.

/// A parsed /…/device.
struct DeviceSpec {
  DeviceKind kind = DeviceKind::kCpu;
  int index = -1;  ///< cuda: the GPU number of "cuda:N"; -1 for "cpu" and bare "cuda"
  /// Bare "cuda": the rank's own GPU, chosen per rank (dist::rank_device).
  bool rank_local() const { return kind == DeviceKind::kCuda && index < 0; }
};

/// The names of a config: "global", "dual", "multiscale"; "mnist_idx", …; "inclusive",
/// "strict", "both"; "bonferroni", "reference"; "strong", "weak", "none"; "[0,1]", "[-1,1]";
/// "cpu", "cuda"; "cpu", "cuda", "cuda:N".
std::string to_string(Method method);
std::string to_string(DatasetFormat format);
std::string to_string(TableConvention convention);
std::string to_string(AlphaSplit split);
std::string to_string(RadiusWeight weight);
std::string to_string(InputRange range);
std::string to_string(DeviceKind kind);
std::string to_string(const DeviceSpec& device);
std::string to_string(NoiseKind kind);   ///< "gaussian", "grid"
std::string to_string(Sampling sampling);  ///< "fixed", "staged"
std::string to_string(NoiseStreams streams);  ///< "global", "dual_rs_classifier"
std::string to_string(EstimatorTarget target);  ///< "soft_ce", "ce"
std::string to_string(Precision precision);  ///< "fp32", "bf16", "fp16"

/// Parse a config's name; the counterpart of to_string. \param pointer the JSON pointer (or
/// command-line flag) the name came from; \param source the file (or "command line").
/// \throws ConfigError naming `pointer`, the value found and the allowed values.
Method parse_method(const std::string& name, const std::string& pointer, const std::string& source = "");
DatasetFormat parse_dataset_format(const std::string& name, const std::string& pointer, const std::string& source = "");
TableConvention parse_table_convention(const std::string& name, const std::string& pointer,
                                       const std::string& source = "");
AlphaSplit parse_alpha_split(const std::string& name, const std::string& pointer, const std::string& source = "");
RadiusWeight parse_radius_weight(const std::string& name, const std::string& pointer, const std::string& source = "");
InputRange parse_input_range(const std::string& name, const std::string& pointer, const std::string& source = "");
/// "cpu", "cuda" or "cuda:N" (N a non-negative integer).
DeviceSpec parse_device(const std::string& name, const std::string& pointer, const std::string& source = "");

/// Which embedded JSON Schema to check a document against.
enum class SchemaKind { kConfig, kJob };

/// The schema text embedded from `data_schemas/` (config.schema.json / job.schema.json).
const std::string& schema_text(SchemaKind kind);

/// Validates `doc` against the schema. \param source file name used in messages.
/// \throws ConfigError listing every violation with its JSON pointer (e.g. `/certify/sigma`).
void validate_schema(const nlohmann::json& doc, SchemaKind kind, const std::string& source);

/// Reads a JSON file. \throws IoError (missing/unreadable) or ConfigError (syntax, with
/// byte offset).
nlohmann::json read_json_file(const std::string& path);

/// Examples chosen from a split: positions [begin, end) of the split's index list, every
/// `skip`-th one. end = -1 means the end of the split.
struct SelectionConfig {
  std::string split = "test";
  std::int64_t begin = 0;
  std::int64_t end = -1;
  std::int64_t skip = 1;
};

/// Where the dataset lives and how its images are prepared (data_schemas/datasets.md).
/// Paths are absolute after loading. Keys by format — mnist_idx: images, labels;
/// cifar10_bin: root; imagenet_folder: root, synsets, val_labels (optional), resize, crop.
struct DatasetConfig {
  std::string name;                  ///< empty: the format's usual name (data::dataset_name)
  DatasetFormat format = DatasetFormat::kMnistIdx;
  std::string images;                ///< mnist_idx: IDX3 image file
  std::string labels;                ///< mnist_idx: IDX1 label file
  std::string root;                  ///< cifar10_bin: the batch files' folder; imagenet_folder: holds train/ and val/
  std::string synsets;               ///< imagenet_folder: synset list (line order = class index)
  std::string val_labels;            ///< imagenet_folder: file -> wnid for a flat val/ (empty: val/<wnid>/ folders)
  std::int64_t resize = 256;         ///< imagenet_folder: shorter side after resizing, pixels
  std::int64_t crop = 224;           ///< imagenet_folder: centre crop side, pixels (<= resize)
  std::map<std::string, std::string> splits;  ///< split name -> index list file
};

/// What a classifier expects as input (data_schemas/models.md). Images reach it through
/// model space [−1, 1] (x' = 2x − 1, or the denoiser's x̂0), a bicubic antialiased resize to
/// (height, width) when set, then the value range: "[0,1]" ((x' + 1)/2, contract
/// `classifier`) or "[-1,1]" (x' as is, contract `classifier-pm1`) [DDS; docs/method.md §9].
struct ClassifierInputConfig {
  InputRange range = InputRange::kZeroOne;
  std::int64_t height = 0;      ///< resize target in pixels; 0 = keep the image size
  std::int64_t width = 0;       ///< resize target in pixels; 0 = keep the image size
  /// True when the classifier takes the [0, 1] image unchanged (no resize, no range change).
  bool is_identity() const { return range == InputRange::kZeroOne && height == 0 && width == 0; }
};

/// The base model: a native architecture with a checkpoint, or a TorchScript file.
struct ModelConfig {
  std::string arch;         ///< "mnist_cnn" (native), or empty with torchscript
  std::string checkpoint;   ///< native weights written by train-base
  std::string torchscript;  ///< TorchScript module: [B,C,H,W] -> [B,K] logits (see `input`)
  std::int64_t num_classes = 10;
  std::string device = "cpu";
  ClassifierInputConfig input;  ///< /model/input_range and /model/input_size
  bool optimize = true;         ///< /model/optimize: inference through a frozen, optimised graph (docs/method.md §14)
  Precision precision = Precision::kFp32;  ///< /model/precision (inference only; training runs in float32)
  bool allow_tf32 = false;      ///< /model/allow_tf32: TF32 matmuls and convolutions on CUDA
};

/// The diffusion denoiser of denoised smoothing [DDS; docs/method.md §9]: an ε-prediction network
/// (native `arch` + `checkpoint`, or a TorchScript file with the `epsilon` contract) and the
/// schedule it was trained with. When a config has this section, every base classifier and
/// the estimator see denoise(x + δ) instead of x + δ, in certification and in training.
struct DenoiserConfig {
  std::string arch;          ///< native ε-model ("mnist_unet"), with checkpoint
  std::string checkpoint;    ///< native weights written by train-denoiser
  std::string torchscript;   ///< TorchScript ε-model (contract `epsilon`)
  ScheduleKind schedule = ScheduleKind::kCosine;  ///< /denoiser/schedule (required there)
  std::int64_t steps = 0;    ///< T
  bool rescale_timesteps = true;  ///< the network receives t·1000/T (else t)
  std::string device = "cpu";
  bool optimize = true;      ///< /denoiser/optimize: inference through a frozen, optimised graph
  Precision precision = Precision::kFp32;  ///< /denoiser/precision (inference only)
};

/// Training of a native ε-model with the DDPM objective (Ho et al. 2020): x_t = √ᾱ_t x0' +
/// √(1−ᾱ_t) ε, loss ‖ε − ε_θ(x_t, t)‖². Timesteps are drawn around the t* of `sigmas`:
/// σ uniformly from `sigmas`, then t uniformly from the integers in
/// [t*(σ)·(1 − t_window), t*(σ)·(1 + t_window)] ∩ [0, T − 1].
struct TrainDenoiserConfig {
  std::int64_t epochs = 10;
  std::int64_t batch_size = 128;
  double lr = 2e-3;                 ///< AdamW
  double weight_decay = 0.0;
  std::int64_t lr_step_epochs = 0;  ///< multiply lr by lr_gamma every this many epochs (0 = never)
  double lr_gamma = 0.5;
  std::vector<double> sigmas;       ///< empty: Σ ∪ {σ_e} from /dual
  double t_window = 0.25;           ///< relative half-width of each timestep window
  double validation_fraction = 0.05;
  std::uint64_t seed = 0;
  SelectionConfig selection{"train", 0, -1, 1};
  /// /…/loader_threads: threads that decode and noise step t+1's batch while step t computes
  /// (docs/method.md §19); 0 = not given: the rank's CPU share. Results never depend on it.
  std::int64_t loader_threads = 0;
};

/// Standard randomized smoothing at one global sigma [Cohen, CERTIFY]. Defaults follow
/// Cohen et al. except n (100,000 there; 1,000 here, set it in the config).
/// /certify/staged: the looks of staged sequential CERTIFY (docs/method.md §16).
struct StagedConfig {
  std::vector<std::int64_t> looks;        ///< explicit cumulative sample counts, increasing, <= n (n is appended)
  std::int64_t num_looks = 8;             ///< when `looks` is empty: this many geometric looks ending at n
  double last_look_alpha_share = 0.5;     ///< share of α spent at the last look; the rest evenly over the others
  double max_radius = -1.0;               ///< stop once reached; < 0: the largest radius of /table/radii
  /// Futility projects the remaining copies at the Clopper–Pearson upper bound of p_ĉ at this
  /// level (0: as if every remaining copy voted for ĉ). Any stop keeps the certificate valid;
  /// this only trades a small chance of a lower radius for fewer copies.
  double futility_beta = 0.001;
};

struct CertifyConfig {
  Method method = Method::kGlobal;
  double sigma = 0.25;           ///< noise level, pixel units, > 0
  std::int64_t n0 = 100;         ///< selection copies, >= 1
  std::int64_t n = 1000;         ///< estimation copies, >= 1
  double alpha = 0.001;          ///< failure probability in (0, 1)
  std::int64_t batch_size = 1000;///< noisy copies per forward pass, >= 1
  std::uint64_t seed = 0;        ///< noise seed (counter-based RNG key)
  SelectionConfig selection;
  double alpha_e = -1.0;         ///< dual: estimator α; certify() resolves it (dual_alpha_split)
  double alpha_c = -1.0;         ///< dual: classifier α; certify() resolves it (dual_alpha_split)
  AlphaSplit alpha_split = AlphaSplit::kBonferroni;  ///< multiscale: α over the stages
  std::int64_t shard_size = 20;  ///< examples per shard (unit of work, output and resume), >= 1
  NoiseKind noise = NoiseKind::kGaussian;  ///< /certify/noise (docs/method.md §15)
  Sampling sampling = Sampling::kFixed;    ///< /certify/sampling (docs/method.md §16)
  StagedConfig staged;                     ///< /certify/staged, used when sampling is staged
  /// The radii the staged stops aim at: /table/radii up to max_radius (and max_radius itself),
  /// resolved by ExperimentConfig::certify(); 0 is always first (non-abstention).
  std::vector<double> stop_radii;
  /// /certify/method_name: the `method` written into the result file and used as its table
  /// row (e.g. "dual_rs_off_the_shelf" for Dual RS on the base classifier, DualRS Table 2);
  /// empty = derived from the method, σ, noise and sampling ("global_sigma_0.25", "dual_rs").
  std::string method_name;
  /// /certify/streams (method global only). With kDualRsClassifier, certify() resolves
  /// `sigma_word` to the index of `sigma` in /dual/sigma_candidates and sets alpha to alpha_c.
  NoiseStreams streams = NoiseStreams::kGlobal;
  std::uint32_t sigma_word = 0;  ///< the noise counter's σ word (0 unless streams = dual_rs_classifier)
};

/// PREDICT [Cohen]: abstain unless the top class beats the runner-up at level alpha.
struct PredictConfig {
  Method method = Method::kGlobal;
  AlphaSplit alpha_split = AlphaSplit::kBonferroni;
  double sigma = 0.25;
  std::int64_t n = 1000;
  double alpha = 0.001;
  std::int64_t batch_size = 1000;
  std::uint64_t seed = 0;
  SelectionConfig selection;
  std::int64_t shard_size = 20;  ///< examples per shard, >= 1
  NoiseKind noise = NoiseKind::kGaussian;  ///< /predict/noise
};

/// Training of a base classifier with Gaussian noise augmentation [Cohen §4]: either one
/// fixed sigma, or a sigma drawn per example uniformly from sigma_candidates.
struct TrainBaseConfig {
  std::int64_t epochs = 6;
  std::int64_t batch_size = 128;
  double lr = 1e-3;              ///< AdamW learning rate
  double weight_decay = 1e-4;
  std::int64_t lr_step_epochs = 0;
  double lr_gamma = 0.5;
  std::optional<double> sigma;   ///< fixed noise level
  std::vector<double> sigma_candidates;  ///< per-example noise levels (Σ)
  std::uint64_t seed = 0;
  SelectionConfig selection{"train", 0, -1, 1};
  /// /…/loader_threads: threads that decode and noise step t+1's batch while step t computes
  /// (docs/method.md §19); 0 = not given: the rank's CPU share. Results never depend on it.
  std::int64_t loader_threads = 0;
};

/// A model without a class count: the Dual RS estimator (|Σ| outputs) or an expert.
struct ModelRef {
  std::string arch;
  std::string checkpoint;
  std::string torchscript;
  std::string device = "cpu";
  double sigma = 0.0;  ///< experts: the σ it serves
  ClassifierInputConfig input;  ///< input_range / input_size
  bool optimize = true;         ///< inference through a frozen, optimised graph (docs/method.md §14)
  Precision precision = Precision::kFp32;  ///< inference precision (training runs in float32)
  bool allow_tf32 = false;      ///< TF32 matmuls and convolutions on CUDA
  bool empty() const { return arch.empty() && torchscript.empty(); }
};

/// Dual RS settings (DualRS §4, §5.3): Σ, σ_e, the estimator and optional experts (routing).
struct DualConfig {
  std::vector<double> sigma_candidates;
  double sigma_e = 1.0;
  bool allow_sigma_e_below_max = false;
  ModelRef estimator;
  std::vector<ModelRef> experts;  ///< empty, or one per σ in Σ's order (routing)
  bool routing() const { return !experts.empty(); }
};

/// Per-σ radius labels (DualRS §5.2.1): N votes per (example, σ) at level α_label.
struct LabelConfig {
  std::int64_t n = 100;
  double alpha = 0.001;
  std::int64_t batch_size = 100;
  std::uint64_t seed = 0;
  SelectionConfig selection{"train", 0, -1, 1};
  std::int64_t shard_size = 100;  ///< examples per shard, >= 1
  NoiseKind noise = NoiseKind::kGaussian;  ///< /label/noise
};

/// The smoothed estimator's σ choice for training examples (majority of n votes at σ_e).
struct EstimateSigmaConfig {
  std::int64_t n = 32;
  std::int64_t batch_size = 256;
  std::uint64_t seed = 0;
  SelectionConfig selection{"train", 0, -1, 1};
  std::int64_t shard_size = 100;  ///< examples per shard, >= 1
  NoiseKind noise = NoiseKind::kGaussian;  ///< /estimate_sigma/noise
};

/// Classifier fine-tuning under σ_c(x) (DualRS §5.2.2); AdamW.
struct FinetuneConfig {
  std::string estimates;  ///< σ-estimates file
  std::int64_t epochs = 2;
  std::int64_t batch_size = 128;
  double lr = 1e-4;
  double weight_decay = 0.01;
  std::uint64_t seed = 0;
  /// /…/loader_threads: threads that decode and noise step t+1's batch while step t computes
  /// (docs/method.md §19); 0 = not given: the rank's CPU share. Results never depend on it.
  std::int64_t loader_threads = 0;
};

/// The variance estimator's training [DualRS §5.2; docs/method.md §6]: /train_estimator with
/// its preset's recipe under the keys it gives, and σ_e from /dual.
struct TrainEstimatorConfig {
  std::string preset;             ///< "", "cifar10" or "imagenet": defaults from the paper (train_estimator_preset)
  double sigma_e = 1.0;           ///< noise level of the estimator's inputs (/dual/sigma_e)
  std::int64_t epochs = 10;
  std::int64_t batch_size = 128;  ///< clean images per optimizer step
  std::int64_t m = 2;             ///< noisy copies per image
  double lr = 0.01;               ///< AdamW
  double weight_decay = 0.01;
  std::int64_t lr_step_epochs = 30;
  double lr_gamma = 0.5;
  double lambda = 40.0;           ///< consistency weight λ
  double eta = 0.5;               ///< entropy weight η
  RadiusWeight radius_weight = RadiusWeight::kStrong;  ///< w_r
  EstimatorTarget loss = EstimatorTarget::kSoftCe;     ///< /train_estimator/loss
  bool rebalance = true;          ///< use w_e = 1/q_best (false: w_e = 1, e.g. strong experts)
  double validation_fraction = 0.1;  ///< held-out slice for the σ-selection accuracy
  std::uint64_t seed = 0;
  std::string labels;             ///< labels.h5 from `dualrs label` ("" until a job sets it)
  std::string init_checkpoint;    ///< classifier whose feature layers start the estimator; "" = fresh
  /// /…/loader_threads: threads that decode and noise step t+1's batch while step t computes
  /// (docs/method.md §19); 0 = not given: the rank's CPU share. Results never depend on it.
  std::int64_t loader_threads = 0;
};

/// The recipe of a named preset (the paper's settings, docs/method.md §6): "" (the struct's
/// defaults), "cifar10" or "imagenet". \throws ConfigError naming /train_estimator/preset.
TrainEstimatorConfig train_estimator_preset(const std::string& name);

/// Certified-accuracy table settings (docs/method.md §10). `/table/radii` is either a list of
/// radii (ℓ2, [0,1]-pixel units, strictly increasing) or the name of a paper grid.
struct TableConfig {
  std::vector<double> radii;          ///< explicit radii; empty: use radii_preset
  std::string radii_preset;           ///< "cifar10" | "imagenet" | "" (= cifar10)
  TableConvention convention = TableConvention::kBoth;
};

/// The radius grid "cifar10" (0, 0.25, …, 2.5) or "imagenet" (0, 0.5, …, 2).
/// \throws ConfigError naming /table/radii for another name.
std::vector<double> radius_preset(const std::string& name);
/// The radii staged CERTIFY aims at (CertifyConfig::stop_radii): 0, then the grid's radii
/// above 0 and below `max_radius`, then max_radius itself (max_radius < 0: the whole grid).
std::vector<double> stop_radii(const std::vector<double>& grid, double max_radius);
/// The grid used when /table/radii is absent: radius_preset("cifar10").
std::vector<double> default_radii();
/// The radii a table reports: /table/radii, its preset, or default_radii().
std::vector<double> table_radii(const TableConfig& table);

/// Figure settings of `dualrs plot` (analysis/dualrs_plots.py).
struct PlotConfig {
  TableConvention convention = TableConvention::kInclusive;  ///< curves: inclusive or strict (not both)
  std::vector<std::string> formats = {"png", "pdf"};  ///< image formats written per figure
};

/// A loaded, schema-valid experiment config plus where it came from.
class ExperimentConfig {
 public:
  /// Loads `path`, makes its relative paths absolute (relative to the file's folder),
  /// applies `patch` (JSON merge patch, RFC 7386; its relative paths are relative to
  /// `patch_base_dir`, the current directory when empty) and validates the result.
  /// \throws IoError, ConfigError.
  static ExperimentConfig load(const std::string& path, const nlohmann::json& patch = nlohmann::json::object(),
                               const std::string& patch_base_dir = "");
  /// From an in-memory document (paths taken as given). \throws ConfigError.
  static ExperimentConfig from_json(nlohmann::json doc, std::string source);

  const nlohmann::json& doc() const { return doc_; }
  const std::string& source() const { return source_; }
  bool has(const std::string& section) const { return doc_.contains(section); }

  /// Typed sections with defaults. The required ones throw ConfigError naming the missing
  /// section or key; semantic checks the schema cannot express are made here too.
  DatasetConfig dataset() const;
  ModelConfig model() const;
  CertifyConfig certify() const;
  PredictConfig predict() const;
  TrainBaseConfig train_base() const;
  /// \throws ConfigError when explicit radii are not strictly increasing.
  TableConfig table() const;
  PlotConfig plot() const;
  /// Dual RS section, checked: Σ strictly increasing and > 0; σ_e >= max Σ unless
  /// allow_sigma_e_below_max; experts (if any) one per σ with matching `sigma`.
  DualConfig dual() const;
  LabelConfig label() const;
  EstimateSigmaConfig estimate_sigma() const;
  FinetuneConfig finetune() const;
  /// /train_estimator: its preset's recipe, then the keys the section gives, σ_e from /dual
  /// (its default when the config has no /dual); checked with validate(). The labels file is
  /// not required here (a job sets it per stage); the stage that trains requires it.
  TrainEstimatorConfig train_estimator() const;
  /// The /denoiser section, or nothing when the config has none. Checked: exactly one of
  /// 'arch' (+ checkpoint, except for train-denoiser) or 'torchscript'; a schedule and steps.
  std::optional<DenoiserConfig> denoiser() const;
  /// /train_denoiser with defaults.
  TrainDenoiserConfig train_denoiser() const;

 private:
  ExperimentConfig(nlohmann::json doc, std::string source) : doc_(std::move(doc)), source_(std::move(source)) {}
  nlohmann::json doc_;
  std::string source_;
};

/// Makes every path-valued key of a config document absolute against `base_dir`
/// (dataset images/labels/root/synsets/val_labels/splits, model / estimator / expert /
/// denoiser checkpoint and torchscript, labels and estimates files).
void absolutize_config_paths(nlohmann::json& doc, const std::string& base_dir);

/// Resolved values, as recorded in provenance.
nlohmann::json to_json(const SelectionConfig& c);
nlohmann::json to_json(const DatasetConfig& c);
nlohmann::json to_json(const ModelConfig& c);
nlohmann::json to_json(const CertifyConfig& c);
nlohmann::json to_json(const PredictConfig& c);
nlohmann::json to_json(const TrainBaseConfig& c);
nlohmann::json to_json(const ModelRef& c);
nlohmann::json to_json(const DualConfig& c);
nlohmann::json to_json(const LabelConfig& c);
nlohmann::json to_json(const EstimateSigmaConfig& c);
nlohmann::json to_json(const FinetuneConfig& c);
nlohmann::json to_json(const TableConfig& c);
nlohmann::json to_json(const PlotConfig& c);
nlohmann::json to_json(const ClassifierInputConfig& c);
nlohmann::json to_json(const DenoiserConfig& c);
nlohmann::json to_json(const TrainDenoiserConfig& c);
/// init_checkpoint only when set and `labels` never (the stage records the labels file with
/// its hash), so config hashes of runs without them stay as they were.
nlohmann::json to_json(const TrainEstimatorConfig& c);

// ---- Checks of a section's values, one per section ------------------------------------------
// What the schema cannot say about a section's values, in one place: the typed reader calls
// it (so every stage's run, its `validate` before a job and `dualrs validate` see the same
// problems), and library code that takes a section directly calls it again. Each throws one
// ConfigError listing every problem with its pointer under the section (source empty).

/// /certify: σ > 0, α in (0, 1), α_e and α_c in (0, 1) or negative (not given: α/2),
/// n0, n, batch_size, shard_size >= 1.
void validate(const CertifyConfig& config);
/// /predict: σ > 0, α in (0, 1), n, batch_size, shard_size >= 1.
void validate(const PredictConfig& config);
/// /label: N >= 1, α_label in (0, 1), batch_size, shard_size >= 1.
void validate(const LabelConfig& config);
/// /estimate_sigma: n, batch_size, shard_size >= 1.
void validate(const EstimateSigmaConfig& config);
/// /train_estimator: σ_e > 0 (/dual/sigma_e), epochs, batch_size, m >= 1, lr > 0, λ, η >= 0,
/// validation_fraction in [0, 1).
void validate(const TrainEstimatorConfig& config);

/// The ModelConfig for a ModelRef with `num_classes` outputs.
ModelConfig to_model_config(const ModelRef& ref, std::int64_t num_classes);

/// The method name used in result files and tables, e.g. "global_sigma_0.25",
/// "global_sigma_1.0" (sigma printed with at least one decimal).
std::string global_method_name(double sigma);

/// The shortest decimal text that reads back as exactly `value`, laid out as Python's repr()
/// writes a float: "0.25", "1.0", "0.0005", "1e-05", "5e-324", "1.2345678901234568e+17",
/// "nan", "-inf" (fixed notation for decimal exponents -4 to 15, scientific outside). Method
/// names, result files and CSVs print numbers this way, so pandas reads back the double the
/// code computed and people read "0.942", not "0.94199999999999995".
std::string format_decimal(double value);

}  // namespace core
}  // namespace dualrs
