#pragma once
// The frame of every training stage (train-base, train-denoiser, train-estimator, finetune):
// where the epoch loop starts (resume), what is written after every epoch (checkpoint,
// train_log.csv, train_state.json) and at the end (the sidecar JSON with provenance)
// (docs/architecture.md §11, data_schemas/models.md).

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dualrs/io/provenance.h"
#include "dualrs/pipeline/stage_context.h"

namespace torch::nn {
class Module;
}

namespace dualrs::pipeline {

/// The ranks a training stage runs on: all of them (the data-parallel trainers), or rank 0
/// alone (a root-only stage, whose other ranks wait outside the stage's work).
enum class TrainingRanks { kEvery, kRootOnly };

/// What differs between training stages.
struct TrainingSpec {
  std::string command;         ///< the stage, for messages: "train-base"
  std::string out_dir;         ///< the stage's output folder (created by the stage)
  std::string checkpoint;      ///< file name of the weights in out_dir: "model.pt"
  std::string sidecar;         ///< file name of the sidecar JSON: "model.json"
  std::string log_header;      ///< first line of train_log.csv, without its newline
  std::string epochs_pointer;  ///< JSON pointer of the epoch count in the provenance config: "/train_base/epochs"
  TrainingRanks ranks = TrainingRanks::kEvery;
};

/// The resume key of a training run: SHA-256 (hex) of `config` (a provenance config: the
/// resolved sections and input_files_sha256) without the entry at `epochs_pointer`. The
/// trainers' learning rate and random streams depend only on the epoch index, never on the
/// epoch count, so a run with the same key and more epochs continues a shorter one.
/// \throws dualrs::Error when `config` has no entry at `epochs_pointer`.
std::string training_resume_key(const nlohmann::json& config, const std::string& epochs_pointer);

/// stage_provenance (model_assembly.h) with the SHA-256 of each of `data_files` (a labels or
/// σ-estimates file the stage trains on) added to input_files_sha256 next to the model
/// files', so the resume key changes when such a file is rewritten at the same path.
/// \throws IoError when a data file cannot be read.
io::Provenance training_provenance(const std::string& schema, const std::string& command, nlohmann::json resolved,
                                   std::uint64_t seed, const std::vector<std::string>& data_files = {});

/// One run of a training stage in its output folder. Construct it on every rank that runs the
/// stage with the same spec and provenance, then:
///   1. start(): the first epoch to train (1, or after the last finished one);
///   2. train from there, calling epoch_done() from the trainer's epoch callback;
///   3. finish(sidecar): publish the sidecar with the provenance.
class TrainingRun {
 public:
  TrainingRun(StageContext& ctx, TrainingSpec spec, io::Provenance provenance);

  /// Collective over every rank for TrainingRanks::kEvery (rank 0 alone for kRootOnly).
  /// Rank 0 reads out_dir/train_state.json: when its resume_key equals this run's, the
  /// checkpoint exists and its epoch is at most `epochs`, the run resumes after that epoch
  /// (with its log and history) and says so ("<command>: resuming after epoch K"); otherwise
  /// it starts at epoch 1. Rank 0's decision is broadcast, and when resuming every rank loads
  /// the checkpoint into `module` (`what` names it in errors). The trainer then loads the
  /// optimizer state from optimizer_path() when the first epoch is > 1.
  /// \return the first epoch to train (epochs + 1 when the run is already complete).
  /// \throws dist::AgreedFailure (kEvery) or the error itself (kRootOnly): unreadable state
  /// file, a checkpoint that does not load (ModelError).
  std::int64_t start(torch::nn::Module* module, const std::string& what, std::int64_t epochs);

  /// Records a finished epoch; call it on every rank from the trainer's epoch callback.
  /// `csv_line` is the epoch's train_log.csv row without its newline; `record`, when not null,
  /// is appended to history(). Rank 0 then publishes, each atomically and in this order, the
  /// checkpoint of `module`, train_log.csv and train_state.json {epoch, resume_key, log,
  /// history}: a state file names an epoch whose checkpoint is already written.
  /// \throws ModelError, IoError (rank 0; the trainers agree on the callback's outcome).
  void epoch_done(std::int64_t epoch, const std::string& csv_line, nlohmann::json record = nullptr);

  /// Publishes out_dir/<sidecar>: `sidecar` with "provenance" (finished now) added. Runs on
  /// rank 0 while the other ranks wait (kEvery) or on rank 0 alone (kRootOnly).
  void finish(nlohmann::json sidecar);

  std::int64_t first_epoch() const { return first_epoch_; }
  bool resumed() const { return first_epoch_ > 1; }
  /// Where the trainer keeps its optimizer state: out_dir/optimizer.pt.
  std::string optimizer_path() const;
  const std::string& resume_key() const { return resume_key_; }
  /// The records of the finished epochs, resumed ones included (a JSON array).
  const nlohmann::json& history() const { return history_; }
  const io::Provenance& provenance() const { return provenance_; }

 private:
  void decide(std::int64_t epochs);  // rank 0: first_epoch_, log_, history_
  std::string path(const std::string& name) const;

  StageContext& ctx_;
  TrainingSpec spec_;
  io::Provenance provenance_;
  std::string resume_key_;
  torch::nn::Module* module_ = nullptr;
  std::string what_;
  std::int64_t first_epoch_ = 1;
  std::string log_;
  nlohmann::json history_ = nlohmann::json::array();
};

}  // namespace dualrs::pipeline
