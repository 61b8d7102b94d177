"""Every training stage resumes (pipeline/training_run.h): for train-base, finetune,
train-estimator and train-denoiser, N epochs in one run and k < N epochs followed by a run of
N epochs in the same folder give the same weights (checkpoint bytes) and the same log; a
changed setting other than the epoch count starts afresh instead, and so does a training
stage of `dualrs run --force`."""
import copy
import hashlib
import json
import os
import shutil
import tempfile
import unittest

from dualrs_testlib import TempDirTestCase, run, small_config, trained_checkpoint

SIGMAS = [0.25, 0.5, 1.0]
EPOCHS = 3   # N
FIRST = 1    # k < N
_shared = {}


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def log_rows(path):
    """train_log.csv without its `seconds` column (wall time differs between runs)."""
    with open(path) as f:
        lines = f.read().splitlines()
    header = lines[0].split(",")
    assert header[-1] == "seconds", header
    return [line.rsplit(",", 1)[0] for line in lines]


def base_config():
    cfg = small_config()
    cfg["train_base"] = {"epochs": EPOCHS, "batch_size": 32, "lr": 0.002, "lr_step_epochs": 1, "lr_gamma": 0.5,
                         "sigma_candidates": [0.25, 0.5], "seed": 1, "selection": {"split": "train", "end": 160}}
    cfg["dual"] = {"sigma_candidates": SIGMAS, "sigma_e": 1.0, "estimator": {"arch": "mnist_cnn"}}
    cfg["label"] = {"n": 16, "alpha": 0.01, "batch_size": 48, "seed": 2, "selection": {"split": "train", "end": 96}}
    cfg["train_estimator"] = {"epochs": EPOCHS, "batch_size": 16, "lr": 0.001, "lr_step_epochs": 1, "lambda": 5.0,
                              "validation_fraction": 0.25}
    cfg["estimate_sigma"] = {"n": 4, "batch_size": 16, "selection": {"split": "train", "end": 64}}
    cfg["finetune"] = {"epochs": EPOCHS, "batch_size": 16, "lr": 0.0005}
    cfg["denoiser"] = {"arch": "mnist_unet", "schedule": "linear", "steps": 1000}
    cfg["train_denoiser"] = {"epochs": EPOCHS, "batch_size": 16, "lr_step_epochs": 1, "sigmas": [0.5],
                             "validation_fraction": 0.25, "selection": {"split": "train", "end": 32}}
    return cfg


def shared():
    """The small base classifier, its labels and σ estimates, made once: the trainers' inputs."""
    if not _shared:
        root = tempfile.mkdtemp(prefix="dualrs_it_resume_")
        cfg = base_config()
        del cfg["denoiser"]
        path = os.path.join(root, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        checkpoint = trained_checkpoint()
        run("label", "-c", path, "-o", os.path.join(root, "label"), "-q", "--checkpoint", checkpoint)
        labels = os.path.join(root, "label", "labels.h5")
        run("train-estimator", "-c", path, "-o", os.path.join(root, "est"), "-q", "--labels", labels, "--epochs", 1)
        run("estimate-sigma", "-c", path, "-o", os.path.join(root, "sig"), "-q",
            "--estimator", os.path.join(root, "est", "estimator.pt"))
        _shared.update(root=root, checkpoint=checkpoint, labels=labels,
                       estimates=os.path.join(root, "sig", "sigma_estimates.h5"))
    return _shared


def tearDownModule():
    if _shared:
        shutil.rmtree(_shared["root"], ignore_errors=True)


class TrainingResumeTest(TempDirTestCase):
    """One test per stage; each runs it four times in small settings."""

    def config(self, stage):
        cfg = base_config()
        inputs = shared()
        if stage == "finetune":
            cfg["model"]["checkpoint"] = inputs["checkpoint"]
            cfg["finetune"]["estimates"] = inputs["estimates"]
        if stage == "train-estimator":
            cfg["train_estimator"]["labels"] = inputs["labels"]
        if stage != "train-denoiser":
            del cfg["denoiser"]  # a classifier trained on denoised inputs is not what these stages test
        return cfg

    def train(self, stage, cfg, out, epochs, name):
        section = {"train-base": "train_base", "finetune": "finetune", "train-estimator": "train_estimator",
                   "train-denoiser": "train_denoiser"}[stage]
        cfg = copy.deepcopy(cfg)
        cfg[section]["epochs"] = epochs
        return run(stage, "-c", self.write_json(name, cfg), "-o", out)

    def check_stage_resumes(self, stage, checkpoint, lr_section, lr):
        cfg = self.config(stage)
        whole, split = self.path("whole"), self.path("split")
        self.train(stage, cfg, whole, EPOCHS, "whole.json")
        first = self.train(stage, cfg, split, FIRST, "first.json")
        self.assertNotIn("resuming", first.stderr)
        self.assertEqual(len(log_rows(os.path.join(split, "train_log.csv"))), 1 + FIRST)
        second = self.train(stage, cfg, split, EPOCHS, "second.json")
        self.assertIn(f"{stage}: resuming after epoch {FIRST}", second.stderr)
        self.assertEqual(sha(os.path.join(split, checkpoint)), sha(os.path.join(whole, checkpoint)))
        self.assertEqual(log_rows(os.path.join(split, "train_log.csv")), log_rows(os.path.join(whole, "train_log.csv")))
        self.assertEqual(len(log_rows(os.path.join(whole, "train_log.csv"))), 1 + EPOCHS)
        with open(os.path.join(split, "train_state.json")) as f:
            self.assertEqual(json.load(f)["epoch"], EPOCHS)

        # Another learning rate is another run: it starts at epoch 1 over the finished one.
        other = copy.deepcopy(cfg)
        other[lr_section]["lr"] = lr
        proc = self.train(stage, other, split, EPOCHS, "other.json")
        self.assertNotIn("resuming", proc.stderr)
        self.assertIn("starting at epoch 1", proc.stderr)
        rows = log_rows(os.path.join(split, "train_log.csv"))
        self.assertEqual(len(rows), 1 + EPOCHS)
        self.assertNotEqual(rows, log_rows(os.path.join(whole, "train_log.csv")))
        self.assertNotEqual(sha(os.path.join(split, checkpoint)), sha(os.path.join(whole, checkpoint)))
        return whole, split

    def test_train_base_resumes(self):
        whole, split = self.check_stage_resumes("train-base", "model.pt", "train_base", 0.001)
        with open(os.path.join(whole, "model.json")) as f:
            meta = json.load(f)
        self.assertEqual([h["epoch"] for h in meta["history"]], list(range(1, EPOCHS + 1)))
        with open(os.path.join(split, "model.json")) as f:
            self.assertEqual([h["epoch"] for h in json.load(f)["history"]], list(range(1, EPOCHS + 1)))

    def test_finetune_resumes(self):
        whole, _ = self.check_stage_resumes("finetune", "model.pt", "finetune", 0.001)
        with open(os.path.join(whole, "model.json")) as f:
            digests = json.load(f)["provenance"]["config"]["input_files_sha256"]
        inputs = shared()
        self.assertEqual(digests[inputs["checkpoint"]], sha(inputs["checkpoint"]))
        self.assertEqual(digests[inputs["estimates"]], sha(inputs["estimates"]))

    def test_train_estimator_resumes(self):
        whole, _ = self.check_stage_resumes("train-estimator", "estimator.pt", "train_estimator", 0.002)
        with open(os.path.join(whole, "estimator.json")) as f:
            digests = json.load(f)["provenance"]["config"]["input_files_sha256"]
        self.assertEqual(digests[shared()["labels"]], sha(shared()["labels"]))

    def test_train_denoiser_resumes(self):
        self.check_stage_resumes("train-denoiser", "denoiser.pt", "train_denoiser", 0.001)


class ForcedJobTest(TempDirTestCase):
    def test_run_force_trains_a_training_stage_from_epoch_one(self):
        cfg = base_config()
        del cfg["denoiser"]
        cfg["train_base"]["epochs"] = 2
        self.write_json("config.json", cfg)
        job = self.write_json("job.json", {"name": "forced", "config": "config.json",
                                           "stages": [{"name": "base", "command": "train-base"}]})
        out = self.path("run")
        run("run", job, "--out", out, "--quiet")
        model = os.path.join(out, "base", "model.pt")
        first = sha(model)
        proc = run("run", job, "--out", out, "--force")
        self.assertIn("base: training state moved to", proc.stderr)
        self.assertNotIn("resuming", proc.stderr)
        self.assertIn("train-base: epoch 1/2", proc.stderr)
        stale = [n for n in os.listdir(os.path.join(out, "base")) if n.startswith("train_state.stale-")]
        self.assertEqual(len(stale), 1, stale)
        self.assertEqual(sha(model), first)  # trained again from epoch 1: the same weights
        self.assertEqual(len(log_rows(os.path.join(out, "base", "train_log.csv"))), 3)


if __name__ == "__main__":
    unittest.main()
