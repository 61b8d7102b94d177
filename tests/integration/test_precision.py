"""Reduced precision end to end (docs/method.md §18) and the bad input of issue 17's keys.

A trained mnist_cnn certifies test digits in bf16 and in fp32 with the same noise: the bf16
run records /model/precision in its output's resolved config (the fp32 run has no such key,
as before), predicts the same class on most digits and gives radii close to fp32's; fp16 on
the CPU, an unknown precision and loader_threads <= 0 are refused naming the key, before
anything is written. The Dual RS estimator takes the key too.
"""
import json
import os
import unittest

import h5py
import numpy as np

from dualrs_testlib import TempDirTestCase, run, small_config, trained_checkpoint


class PrecisionTest(TempDirTestCase):
    def certify(self, name, precision=None, check=True, **certify):
        model = {"arch": "mnist_cnn", "num_classes": 10, "checkpoint": trained_checkpoint()}
        if precision:
            model["precision"] = precision
        cfg = small_config(model=model)
        cfg["certify"].update({"n": 300, "selection": {"split": "test", "begin": 0, "end": 30}, **certify})
        path = self.write_json(name + ".json", cfg)
        return run("certify", "-c", path, "-o", self.path(name), "-q", check=check)

    def read(self, name):
        with h5py.File(self.path(name, "certify.h5"), "r") as f:
            config = json.loads(f.attrs["config"])
            return config, f["prediction"][:], f["radius"][:]

    def test_bf16_certifies_end_to_end_and_records_its_precision(self):
        self.certify("fp32")
        self.certify("bf16", "bf16")
        config32, pred32, radius32 = self.read("fp32")
        config16, pred16, radius16 = self.read("bf16")
        self.assertNotIn("precision", config32["model"])  # float32 runs keep their resolved config
        self.assertEqual(config16["model"]["precision"], "bf16")
        agreement = float(np.mean(pred32 == pred16))
        print(f"bf16 vs fp32 on 30 digits: the same prediction on {agreement:.3f}, "
              f"largest radius difference {np.max(np.abs(radius32 - radius16)):.4f}")
        self.assertGreaterEqual(agreement, 0.9)
        both = (pred32 == pred16) & (pred32 >= 0)
        self.assertLess(float(np.max(np.abs(radius32[both] - radius16[both]))), 0.1)

    def test_fp16_on_the_cpu_and_an_unknown_precision_are_refused(self):
        proc = self.certify("fp16", "fp16", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("/model/precision", proc.stderr)
        self.assertIn("fp16 needs a CUDA device", proc.stderr)
        self.assertFalse(os.path.exists(self.path("fp16", "certify.h5")))
        proc = self.certify("fp8", "fp8", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("/model/precision", proc.stderr)

    def test_loader_threads_below_one_are_refused(self):
        cfg = small_config()
        cfg["train_base"]["loader_threads"] = 0
        path = self.write_json("threads.json", cfg)
        proc = run("train-base", "-c", path, "-o", self.path("tb"), "-q", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("/train_base/loader_threads", proc.stderr)
        self.assertFalse(os.path.exists(self.path("tb", "model.pt")))

    def test_the_estimator_takes_a_precision_too(self):
        cfg = small_config(dual={"sigma_candidates": [0.25, 0.5], "sigma_e": 0.5,
                                 "estimator": {"arch": "mnist_cnn", "precision": "fp16"}})
        path = self.write_json("dual.json", cfg)
        proc = run("validate", path, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("/dual/estimator/precision", proc.stderr)


if __name__ == "__main__":
    unittest.main()
