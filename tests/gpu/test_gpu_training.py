"""Native models training on GPUs (docs/cluster.md §6), run by CTest as gpu.training.

Needs a dualrs built against a CUDA LibTorch (`dualrs --version` reports the CUDA devices
LibTorch sees). Without one this program prints why and exits 77, which CTest reports as
skipped; with one device or more it always runs:

- one rank on cuda trains train-base, train-estimator and train-denoiser to the CPU run's
  weights, within the tolerance of tests/mpi/test_mpi_training.py (only the order of float
  operations differs); certification through the trained native denoiser on cuda answers what
  it answers on the CPU (the noise is drawn on the CPU either way);
- with two devices or more, that file's 2-rank vs 1-rank tests run with DUALRS_TEST_DEVICE=cuda,
  so the gradients are all-reduced by NCCL on the device (NCCL wants one GPU per rank, so
  with one device they are skipped, saying so).
"""
import os
import re

import h5py
import subprocess
import sys
import unittest

os.environ["DUALRS_TEST_DEVICE"] = "cuda"  # read when test_mpi_training is imported
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "mpi"))
import test_mpi_training as mpi  # noqa: E402

SKIP = 77


def visible_cuda_devices():
    """CUDA devices dualrs's LibTorch sees, from `dualrs --version`."""
    out = subprocess.run([mpi.BIN, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"LibTorch \S+: (\d+) CUDA device", out)
    if match is None:
        raise AssertionError(f"dualrs --version does not report CUDA devices:\n{out}")
    return int(match.group(1))


DEVICES = visible_cuda_devices()


class OneGpuEqualsCpuTest(mpi.TwoRanksEqualOneRankTest):
    """Reuses the checkpoint comparison; the 2-rank tests are the class below."""

    def cpu_run(self, command, cfg, name):
        cfg["model"]["device"] = "cpu"
        if "estimator" in cfg.get("dual", {}):
            cfg["dual"]["estimator"]["device"] = "cpu"
        out = os.path.join(mpi._root, name)
        mpi.dualrs(1, command, cfg, out, "-q")
        return out

    def test_train_base(self):
        cpu = self.cpu_run("train-base", mpi.base_config(), "base_cpu")
        gpu = mpi.train_base(1)
        with open(os.path.join(gpu, "model.json")) as f:
            self.assertIn('"device": "cuda"', f.read())
        self.assert_close_checkpoints(os.path.join(cpu, "model.pt"), os.path.join(gpu, "model.pt"),
                                      os.path.join(mpi.train_base(1, epochs=1), "model.pt"), lr=0.002, steps=6)

    def test_train_estimator(self):
        cpu = self.cpu_run("train-estimator", mpi.estimator_config(), "est_cpu")
        gpu = mpi.train_estimator(1)
        self.assert_close_checkpoints(os.path.join(cpu, "estimator.pt"), os.path.join(gpu, "estimator.pt"),
                                      os.path.join(mpi.train_estimator(1, epochs=1), "estimator.pt"), lr=0.001,
                                      steps=8)

    def denoiser_run(self, device, name, epochs=2):
        cfg = mpi.base_config()
        cfg["denoiser"] = {"arch": "mnist_unet", "schedule": "linear", "steps": 1000, "device": device}
        # 72 training digits in batches of 32: 3 AdamW steps an epoch.
        cfg["train_denoiser"] = {"epochs": epochs, "batch_size": 32, "sigmas": mpi.SIGMAS, "validation_fraction": 0.25,
                                 "selection": {"split": "train", "end": 96}}
        out = os.path.join(mpi._root, name)
        mpi.dualrs(1, "train-denoiser", cfg, out, "-q")
        return cfg, out

    def test_train_denoiser_and_denoised_certification(self):
        _, cpu = self.denoiser_run("cpu", "den_cpu")
        cfg, gpu = self.denoiser_run("cuda", "den_gpu")
        _, gpu_one_epoch = self.denoiser_run("cuda", "den_gpu_1", epochs=1)
        self.assert_close_checkpoints(os.path.join(cpu, "denoiser.pt"), os.path.join(gpu, "denoiser.pt"),
                                      os.path.join(gpu_one_epoch, "denoiser.pt"), lr=0.002, steps=6)
        answers = {}
        for device in ("cpu", "cuda"):
            run_cfg = dict(cfg)
            run_cfg["model"] = dict(cfg["model"], checkpoint=os.path.join(mpi.train_base(1), "model.pt"), device=device)
            run_cfg["denoiser"] = dict(cfg["denoiser"], checkpoint=os.path.join(gpu, "denoiser.pt"), device=device)
            run_cfg["certify"] = {"sigma": 0.5, "n0": 20, "n": 200, "alpha": 0.001, "batch_size": 100, "seed": 3,
                                  "selection": {"split": "test", "end": 8}}
            out = os.path.join(mpi._root, f"den_certify_{device}")
            mpi.dualrs(1, "certify", run_cfg, out, "-q")
            with h5py.File(os.path.join(out, "certify.h5"), "r") as f:
                answers[device] = (f["prediction"][()], f["radius"][()])
        # A vote can differ by a count or two where float rounding moves a logit across a tie.
        self.assertEqual(answers["cpu"][0].tolist(), answers["cuda"][0].tolist())
        self.assertLess(abs(answers["cpu"][1] - answers["cuda"][1]).max(), 0.1)

    # The inherited 2-rank tests belong to the class below.
    test_finetune = None
    test_resumed_two_rank_estimator_equals_an_uninterrupted_run_bit_for_bit = None


@unittest.skipIf(DEVICES < 2, f"NCCL needs one GPU per rank; {DEVICES} visible")
class NcclTwoRanksEqualOneRankTest(mpi.TwoRanksEqualOneRankTest):
    def test_ranks_used_nccl(self):
        proc = mpi.dualrs(2, "train-base", mpi.base_config(), os.path.join(mpi._root, "nccl_said"))
        self.assertIn("data-parallel training: NCCL", proc.stderr)


def tearDownModule():
    mpi.tearDownModule()


if __name__ == "__main__":
    if DEVICES == 0:
        print("skipped: dualrs's LibTorch sees no CUDA device (a CPU-only LibTorch, or no GPU here)")
        sys.exit(SKIP)
    unittest.main()
