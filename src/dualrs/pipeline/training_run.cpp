#include "dualrs/pipeline/training_run.h"

#include <filesystem>
#include <utility>

#include "dualrs/core/config.h"
#include "dualrs/core/error.h"
#include "dualrs/io/atomic_file.h"
#include "dualrs/model/base_model.h"
#include "dualrs/pipeline/model_assembly.h"

namespace dualrs::pipeline {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kStateFile = "train_state.json";
constexpr const char* kOptimizerFile = "optimizer.pt";
}  // namespace

std::string training_resume_key(const json& config, const std::string& epochs_pointer) {
  json without_epochs = config;
  const json::json_pointer pointer(epochs_pointer);
  DUALRS_CHECK(without_epochs.contains(pointer), Error, "training resume key: the config has no ", epochs_pointer);
  without_epochs[pointer.parent_pointer()].erase(pointer.back());
  return io::sha256_hex(without_epochs.dump());
}

io::Provenance training_provenance(const std::string& schema, const std::string& command, json resolved,
                                   std::uint64_t seed, const std::vector<std::string>& data_files) {
  json digests = json::object();
  for (const std::string& path : data_files) {
    if (!path.empty()) digests[path] = io::sha256_file_hex(path);
  }
  if (!digests.empty()) resolved["input_files_sha256"] = std::move(digests);
  return stage_provenance(schema, command, std::move(resolved), seed, 0);
}

TrainingRun::TrainingRun(StageContext& ctx, TrainingSpec spec, io::Provenance provenance)
    : ctx_(ctx), spec_(std::move(spec)), provenance_(std::move(provenance)) {
  resume_key_ = training_resume_key(provenance_.config, spec_.epochs_pointer);
  log_ = spec_.log_header + "\n";
}

std::string TrainingRun::path(const std::string& name) const { return (fs::path(spec_.out_dir) / name).string(); }

std::string TrainingRun::optimizer_path() const { return path(kOptimizerFile); }

void TrainingRun::decide(std::int64_t epochs) {
  const std::string state_path = path(kStateFile);
  if (!fs::exists(state_path)) return;
  const json state = read_json_file(state_path);
  const auto done = state.value("epoch", std::int64_t{0});
  const char* command = spec_.command.c_str();
  std::string why;  // why the state in the folder is not continued
  if (state.value("resume_key", "") != resume_key_) {
    why = "it was written with other settings";
  } else if (!fs::exists(path(spec_.checkpoint))) {
    why = spec_.checkpoint + " is missing";
  } else if (done > epochs) {
    why = "it is at epoch " + std::to_string(done) + ", past the " + std::to_string(epochs) + " asked for";
  } else if (state.contains("optimizer_sha256") &&
             (!fs::exists(optimizer_path()) || io::sha256_file_hex(optimizer_path()) != state.value("optimizer_sha256", ""))) {
    // The trainer writes the optimizer state just before epoch_done: a run stopped in between
    // left the state of a later epoch than the checkpoint's.
    why = std::string(kOptimizerFile) + " is not the one saved with it";
  }
  if (done >= 1 && why.empty()) {
    first_epoch_ = done + 1;
    log_ = state.value("log", log_);
    history_ = state.value("history", json::array());
    return;
  }
  if (!why.empty()) say(ctx_, "%s: starting at epoch 1, not continuing %s: %s", command, kStateFile, why.c_str());
  // A fresh run must not leave another run's state next to its own checkpoints.
  fs::remove(state_path);
}

std::int64_t TrainingRun::start(torch::nn::Module* module, const std::string& what, std::int64_t epochs) {
  module_ = module;
  what_ = what;
  auto load = [&] {
    if (first_epoch_ <= 1) return;
    DUALRS_CHECK(module_ != nullptr, ModelError, spec_.command, ": ", what_, " has no native weights to resume");
    model::load_module_checkpoint(*module_, what_, path(spec_.checkpoint));
    say(ctx_, "%s: resuming after epoch %lld", spec_.command.c_str(), static_cast<long long>(first_epoch_ - 1));
  };
  if (spec_.ranks == TrainingRanks::kRootOnly) {
    decide(epochs);
    load();
    return first_epoch_;
  }
  ctx_.agreed([&] {
    if (ctx_.is_root()) decide(epochs);
  });
  ctx_.agreed([&] {
    ctx_.comm.broadcast(&first_epoch_, sizeof first_epoch_, 0);
    load();
  });
  return first_epoch_;
}

void TrainingRun::epoch_done(std::int64_t epoch, const std::string& csv_line, json record) {
  if (!ctx_.is_root()) return;  // rank 0 keeps the log and writes the files
  log_ += csv_line + "\n";
  if (!record.is_null()) history_.push_back(std::move(record));
  DUALRS_CHECK(module_ != nullptr, ModelError, spec_.command, ": ", what_, " has no native weights to save");
  model::save_module_checkpoint(*module_, what_, path(spec_.checkpoint));
  io::write_file_atomic(path("train_log.csv"), log_);
  json state = {{"epoch", epoch}, {"resume_key", resume_key_}, {"log", log_}};
  if (!history_.empty()) state["history"] = history_;
  if (fs::exists(optimizer_path())) state["optimizer_sha256"] = io::sha256_file_hex(optimizer_path());
  io::write_file_atomic(path(kStateFile), state.dump(2) + "\n");
}

void TrainingRun::finish(json sidecar) {
  auto write = [&] {
    provenance_.finished_utc = io::utc_now();
    sidecar["provenance"] = io::to_json(provenance_);
    io::write_file_atomic(path(spec_.sidecar), sidecar.dump(2) + "\n");
  };
  if (spec_.ranks == TrainingRanks::kRootOnly) {
    write();
  } else {
    ctx_.on_root(write);
  }
}

}  // namespace dualrs::pipeline
