"""Data-parallel training under mpirun (docs/cluster.md §6).

For each trainer (train-base, train-estimator, finetune), 2-rank training equals 1-rank
training with the same global batch after several optimizer steps: the saved checkpoints'
tensors agree to float tolerance and so do the logged losses. The ranks see the same examples
(disjoint slices of one permutation) with the same noise (a function of seed, epoch and
example), so only the summation order differs (K-rank gradients are summed per rank, then
across ranks); training is therefore not bit-identical across rank counts.

Tolerance, per tensor of the checkpoints: at most 0.1% of the elements may differ by more
than 2e-5 + 1e-4·|a|, and none by more than 2·3.2·lr·steps. Float summation order changes a
gradient by ~1e-7 relative, and the weights follow to ~1e-6 (measured: 99.9% of the elements
within 1e-6) — except where a gradient is itself at rounding level, from cancellation: AdamW
normalises it, so a rounding change can move that weight by up to ~lr in a step (measured: 2
of 200704 fc1 weights of the estimator off by ~4e-4 after 8 steps). Adam moves a weight by at
most lr·(1-β1)/sqrt(1-β2) ≈ 3.2·lr per step (Kingma & Ba 2015 §2.1), which bounds those few. A
wrong split (a missing or doubled example, unweighted slices, another noise stream) changes
most elements by ~lr and fails the 0.1% rule.

Resume: a 2-rank train-estimator or train-base run stopped after epoch 1 and resumed gives the
checkpoint of an uninterrupted 2-rank run bit for bit. Runs on a few dozen MNIST digits, one thread per rank.

DUALRS_TEST_DEVICE (default cpu) is the models' device: tests/gpu/test_gpu_training.py runs
these tests with "cuda", where 2 ranks reduce gradients with NCCL (one GPU per rank).
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from dualrs_testlib import BIN, TEST_DATA, small_config  # noqa: E402

MPIEXEC = os.environ.get("DUALRS_MPIEXEC", "mpirun")
DEVICE = os.environ.get("DUALRS_TEST_DEVICE", "cpu")
SIGMAS = [0.25, 0.5, 1.0]
ATOL, RTOL = 2e-5, 1e-4
OUTLIER_FRACTION = 1e-3
ADAM_STEP_BOUND = 3.2  # × lr: the largest step AdamW takes with betas (0.9, 0.999)
_root = tempfile.mkdtemp(prefix="dualrs_mpi_train_")
_cache = {}


def dualrs(np_, command, cfg, out, *flags, check=True):
    """Runs `dualrs COMMAND -c CFG.json -o OUT [flags]` on np_ ranks (one rank: a plain process,
    the single-process path), the config written next to OUT; returns the CompletedProcess."""
    with open(out + ".json", "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ)
    env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1"})
    launcher = [MPIEXEC, "-np", str(np_), "--oversubscribe"] if np_ > 1 else []
    args = [BIN, command, "-c", out + ".json", "-o", out, *flags]
    proc = subprocess.run([*launcher, *args], capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(launcher + args)}: exit code {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def tensors(path):
    """name -> tensor of a checkpoint written by save_checkpoint (a TorchScript archive)."""
    module = torch.jit.load(path, map_location="cpu")
    out = dict(module.named_parameters())
    out.update(dict(module.named_buffers()))
    return {k: v.detach() for k, v in out.items()}


def log_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def base_config():
    cfg = small_config()
    cfg["model"]["device"] = DEVICE
    # 80 examples in global batches of 27 (27, 27, 26): on 2 ranks 14 + 13 and 13 + 13, so the
    # remainder rule and the batch weighting are exercised; 2 epochs = 6 steps.
    cfg["train_base"] = {"epochs": 2, "batch_size": 27, "lr": 0.002, "sigma_candidates": SIGMAS, "seed": 5,
                         "selection": {"split": "train", "end": 80}}
    cfg["dual"] = {"sigma_candidates": SIGMAS, "sigma_e": 1.0, "estimator": {"arch": "mnist_cnn", "device": DEVICE}}
    cfg["label"] = {"n": 16, "alpha": 0.01, "batch_size": 48, "seed": 2, "selection": {"split": "train", "end": 300},
                    "shard_size": 100}
    return cfg


def train_base(np_, epochs=2):
    key = f"base{np_}_{epochs}"
    if key not in _cache:
        cfg = base_config()
        cfg["train_base"]["epochs"] = epochs
        out = os.path.join(_root, key)
        dualrs(np_, "train-base", cfg, out, "-q")
        _cache[key] = out
    return _cache[key]


def labels():
    """Labels from the closed-form TorchScript fixture (it always answers class 9, so the
    nines get a radius at every sigma): a quick estimator training set."""
    if "labels" not in _cache:
        cfg = base_config()
        cfg["model"] = {"torchscript": os.path.join(TEST_DATA, "ts_mean_scaled.pt"), "num_classes": 10}
        out = os.path.join(_root, "labels")
        dualrs(1, "label", cfg, out, "-q")
        _cache["labels"] = os.path.join(out, "labels.h5")
    return _cache["labels"]


def estimator_config(epochs=2):
    cfg = base_config()
    # About 30 labelled rows, 3 held out; global batch 8 with m = 2 copies: 4 steps per epoch.
    cfg["train_estimator"] = {"labels": labels(), "epochs": epochs, "batch_size": 8, "m": 2, "lr": 0.001, "seed": 9,
                              "lr_step_epochs": 1, "lr_gamma": 0.5}
    return cfg


def train_estimator(np_, epochs=2):
    key = f"est{np_}_{epochs}"
    if key not in _cache:
        out = os.path.join(_root, key)
        dualrs(np_, "train-estimator", estimator_config(epochs), out, "-q")
        _cache[key] = out
    return _cache[key]


def finetune_config():
    if "ft_config" not in _cache:
        cfg = base_config()
        cfg["model"] = {"arch": "mnist_cnn", "checkpoint": os.path.join(train_base(1), "model.pt"), "num_classes": 10,
                        "device": DEVICE}
        cfg["dual"]["estimator"] = {"arch": "mnist_cnn", "checkpoint": os.path.join(train_estimator(1), "estimator.pt"),
                                    "device": DEVICE}
        cfg["estimate_sigma"] = {"n": 8, "batch_size": 8, "seed": 4, "selection": {"split": "train", "end": 64},
                                 "shard_size": 32}
        sigma_dir = os.path.join(_root, "sigma")
        dualrs(1, "estimate-sigma", cfg, sigma_dir, "-q")
        # 64 examples at their estimated sigma, global batch 16: 4 steps per epoch, 2 epochs.
        cfg["finetune"] = {"estimates": os.path.join(sigma_dir, "sigma_estimates.h5"), "epochs": 2, "batch_size": 16,
                           "lr": 0.001, "seed": 6}
        _cache["ft_config"] = cfg
    return _cache["ft_config"]


def finetune(np_):
    key = f"ft{np_}"
    if key not in _cache:
        out = os.path.join(_root, key)
        dualrs(np_, "finetune", finetune_config(), out, "-q")
        _cache[key] = out
    return _cache[key]


def tearDownModule():
    shutil.rmtree(_root, ignore_errors=True)


class TwoRanksEqualOneRankTest(unittest.TestCase):
    def assert_close_checkpoints(self, one, two, earlier, lr, steps):
        """`one` and `two` agree to the tolerance (module docstring), and training moved the
        weights from the `earlier` checkpoint by far more than it (else the comparison would
        say little)."""
        a, b, e = tensors(one), tensors(two), tensors(earlier)
        self.assertEqual(sorted(a), sorted(b))
        moved = 0.0
        for name in a:
            self.assertEqual(a[name].shape, b[name].shape, name)
            diff = (a[name] - b[name]).abs()
            outside = int((diff > ATOL + RTOL * a[name].abs()).sum())
            self.assertLessEqual(outside, OUTLIER_FRACTION * diff.numel(),
                                 f"{name}: {outside} of {diff.numel()} elements differ beyond the tolerance "
                                 f"(max {diff.max().item():.3g})")
            self.assertLessEqual(diff.max().item(), 2 * ADAM_STEP_BOUND * lr * steps, name)
            moved = max(moved, (a[name] - e[name]).abs().max().item())
        # 50x the tolerance: the estimator's second epoch (4 steps at lr 0.001) moved its largest
        # weight by 1.9e-3 with RNG layout 2 (over 2e-3 with layout 1); a wrong split moves most by ~lr.
        self.assertGreater(moved, 50 * ATOL)

    def assert_close_logs(self, one, two, columns):
        rows1, rows2 = log_rows(one), log_rows(two)
        self.assertEqual(len(rows1), len(rows2))
        for r1, r2 in zip(rows1, rows2):
            self.assertEqual(r1["epoch"], r2["epoch"])
            for c in columns:
                self.assertAlmostEqual(float(r1[c]), float(r2[c]), delta=1e-4 * (1 + abs(float(r1[c]))), msg=c)

    def test_train_base(self):
        one, two = train_base(1), train_base(2)
        self.assert_close_checkpoints(os.path.join(one, "model.pt"), os.path.join(two, "model.pt"),
                                      os.path.join(train_base(1, epochs=1), "model.pt"), lr=0.002, steps=6)
        self.assert_close_logs(os.path.join(one, "train_log.csv"), os.path.join(two, "train_log.csv"),
                               ["loss", "accuracy"])
        with open(os.path.join(two, "model.json")) as f:
            self.assertEqual(json.load(f)["provenance"]["world_size"], 2)

    def test_train_estimator(self):
        one, two = train_estimator(1), train_estimator(2)
        self.assert_close_checkpoints(os.path.join(one, "estimator.pt"), os.path.join(two, "estimator.pt"),
                                      os.path.join(train_estimator(2, epochs=1), "estimator.pt"), lr=0.001, steps=8)
        self.assert_close_logs(os.path.join(one, "train_log.csv"), os.path.join(two, "train_log.csv"),
                               ["loss", "ce", "consistency", "train_selection_accuracy", "val_selection_accuracy"])

    def test_finetune(self):
        one, two = finetune(1), finetune(2)
        self.assert_close_checkpoints(os.path.join(one, "model.pt"), os.path.join(two, "model.pt"),
                                      os.path.join(train_base(1), "model.pt"), lr=0.001, steps=8)
        self.assert_close_logs(os.path.join(one, "train_log.csv"), os.path.join(two, "train_log.csv"),
                               ["loss", "accuracy"])

    def assert_resume_equals_uninterrupted(self, command, whole, first, config, checkpoint):
        """A copy of the 1-epoch 2-rank run `first`, continued to 2 epochs on 2 ranks, equals
        the uninterrupted 2-rank run `whole` bit for bit: the resume key leaves out the epoch
        count (pipeline/training_run.h), so the 1-epoch run's state is resumed as it is."""
        part = os.path.join(_root, os.path.basename(first) + "_resumed")
        shutil.copytree(first, part)
        proc = dualrs(2, command, config, part)
        self.assertIn(f"{command}: resuming after epoch 1", proc.stderr)
        a, b = tensors(os.path.join(whole, checkpoint)), tensors(os.path.join(part, checkpoint))
        self.assertEqual(sorted(a), sorted(b))
        for name in a:
            self.assertTrue(torch.equal(a[name], b[name]), name)
        self.assertEqual([r["loss"] for r in log_rows(os.path.join(whole, "train_log.csv"))],
                         [r["loss"] for r in log_rows(os.path.join(part, "train_log.csv"))])

    def test_resumed_two_rank_estimator_equals_an_uninterrupted_run_bit_for_bit(self):
        self.assert_resume_equals_uninterrupted("train-estimator", train_estimator(2), train_estimator(2, epochs=1),
                                                estimator_config(), "estimator.pt")

    def test_resumed_two_rank_train_base_equals_an_uninterrupted_run_bit_for_bit(self):
        self.assert_resume_equals_uninterrupted("train-base", train_base(2), train_base(2, epochs=1), base_config(),
                                                "model.pt")


class TrainingFaultsTest(unittest.TestCase):
    def test_a_checkpoint_rank_zero_cannot_write_fails_every_rank_with_one_message(self):
        out = os.path.join(_root, "blocked")
        os.makedirs(os.path.join(out, "model.pt", "in_the_way"))  # rename onto a non-empty folder fails
        cfg = base_config()
        cfg["train_base"].update({"epochs": 2, "selection": {"split": "train", "end": 32}})
        proc = dualrs(2, "train-base", cfg, out, "-q", check=False)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        lines = [l for l in proc.stderr.splitlines() if l.startswith("dualrs train-base:")]
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertIn("cannot publish checkpoint", lines[0])
        self.assertIn(os.path.join(out, "model.pt"), lines[0])
        self.assertFalse(os.path.exists(os.path.join(out, "model.json")))
        self.assertTrue(os.path.isdir(os.path.join(out, "model.pt", "in_the_way")))  # nothing else damaged


if __name__ == "__main__":
    unittest.main()
