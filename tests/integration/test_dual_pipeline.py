"""Dual RS stages on real digits (small settings), their outputs checked independently, and
the bad inputs of the Dual RS issue."""
import hashlib
import json
import os
import shutil
import unittest

import h5py
import numpy as np
from scipy import stats

from dualrs_testlib import TempDirTestCase, run, small_config, trained_checkpoint

SIGMAS = [0.25, 0.5, 1.0]
_pipeline = {}


def dual_config(**extra):
    cfg = small_config()
    cfg["model"]["checkpoint"] = trained_checkpoint()
    cfg["dual"] = {"sigma_candidates": SIGMAS, "sigma_e": 1.0, "estimator": {"arch": "mnist_cnn"}}
    cfg["label"] = {"n": 30, "alpha": 0.001, "batch_size": 30, "seed": 2, "selection": {"split": "train", "end": 120}}
    cfg["train_estimator"] = {"epochs": 1, "batch_size": 32, "lr": 0.001, "lambda": 5.0, "validation_fraction": 0.2}
    cfg["estimate_sigma"] = {"n": 8, "batch_size": 8, "selection": {"split": "train", "end": 100}}
    cfg["finetune"] = {"epochs": 1, "batch_size": 32, "lr": 0.0005}
    cfg["certify"].update({"n0": 20, "n": 100, "selection": {"split": "test", "end": 6}})
    cfg.update(extra)
    return cfg


def pipeline():
    """Runs label -> train-estimator -> estimate-sigma -> finetune once; returns the paths."""
    if not _pipeline:
        import tempfile
        root = tempfile.mkdtemp(prefix="dualrs_it_dual_")
        cfg = dual_config()
        path = os.path.join(root, "config.json")
        json.dump(cfg, open(path, "w"))
        run("label", "-c", path, "-o", os.path.join(root, "label"), "-q")
        run("train-estimator", "-c", path, "-o", os.path.join(root, "est"), "-q",
            "--labels", os.path.join(root, "label", "labels.h5"))
        run("estimate-sigma", "-c", path, "-o", os.path.join(root, "sig"), "-q",
            "--estimator", os.path.join(root, "est", "estimator.pt"))
        run("finetune", "-c", path, "-o", os.path.join(root, "ft"), "-q",
            "--estimates", os.path.join(root, "sig", "sigma_estimates.h5"))
        _pipeline.update(root=root, config=path)
    return _pipeline


class DualPipelineTest(TempDirTestCase):
    def test_labels_follow_the_rule(self):
        with h5py.File(os.path.join(pipeline()["root"], "label", "labels.h5"), "r") as f:
            self.assertEqual(f.attrs["schema"], "dualrs.labels")
            self.assertEqual(list(f.attrs["sigma_candidates"]), SIGMAS)
            radii, top, best, w = f["radii"][:], f["top_count"][:], f["best"][:], f["weight_e"][:]
            self.assertEqual(radii.shape, (120, 3))
            for i in range(120):
                for j, sigma in enumerate(SIGMAS):
                    if radii[i, j] > 0:
                        p = stats.beta.ppf(0.001, top[i, j], 30 - top[i, j] + 1)
                        self.assertAlmostEqual(radii[i, j], sigma * stats.norm.ppf(p), delta=1e-9)
                        self.assertGreaterEqual(p, 0.5)
                expected_best = -1 if radii[i].max() == 0 else int(np.argmax(radii[i]))
                self.assertEqual(best[i], expected_best)
            kept = best >= 0
            self.assertGreater(kept.sum(), 60)
            for j in range(3):
                q = np.mean(best[kept] == j)
                if q > 0:
                    self.assertTrue(np.allclose(w[best == j], 1 / q))
            self.assertTrue(np.all(w[~kept] == 0))

    def test_estimator_outputs_and_log(self):
        root = pipeline()["root"]
        with open(os.path.join(root, "est", "estimator.json")) as f:
            meta = json.load(f)
        self.assertEqual(meta["num_classes"], 3)
        with open(os.path.join(root, "est", "train_log.csv")) as f:
            log = f.read().splitlines()
        self.assertEqual(log[0].split(",")[5], "val_selection_accuracy")
        self.assertEqual(len(log), 2)
        with h5py.File(os.path.join(root, "sig", "sigma_estimates.h5"), "r") as f:
            counts = f["counts"][:]
            self.assertTrue(np.all(counts.sum(axis=1) == 8))
            self.assertTrue(np.all(f["sigma_index"][:] == np.argmax(counts, axis=1)))

    def test_resume_skips_finished_epochs(self):
        root = pipeline()["root"]
        before = hashlib.sha256(open(os.path.join(root, "est", "estimator.pt"), "rb").read()).hexdigest()
        proc = run("train-estimator", "-c", pipeline()["config"], "-o", os.path.join(root, "est"),
                   "--labels", os.path.join(root, "label", "labels.h5"))
        self.assertIn("resuming after epoch 1", proc.stderr)
        after = hashlib.sha256(open(os.path.join(root, "est", "estimator.pt"), "rb").read()).hexdigest()
        self.assertEqual(before, after)

    def test_estimator_starts_from_the_classifier_layers(self):
        # lr = 1e-12: one epoch moves no weight beyond 1e-9, so the copied layers must equal the
        # classifier's and the output layer must be a fresh [3, 128] one.
        import torch  # Debian's python3-torch reads LibTorch's native archives
        cfg = json.load(open(pipeline()["config"]))
        cfg["train_estimator"]["lr"] = 1e-12
        out = self.path("est_init")
        proc = run("train-estimator", "-c", self.write_json("c.json", cfg), "-o", out,
                   "--labels", os.path.join(pipeline()["root"], "label", "labels.h5"),
                   "--init-checkpoint", trained_checkpoint())
        self.assertIn("6 tensors initialised from " + trained_checkpoint(), proc.stderr)
        est = dict(torch.jit.load(os.path.join(out, "estimator.pt")).named_parameters())
        base = dict(torch.jit.load(trained_checkpoint()).named_parameters())
        for name in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias"):
            self.assertTrue(torch.allclose(est[name], base[name], rtol=0, atol=1e-9), name)
        self.assertEqual(tuple(est["fc2.weight"].shape), (3, 128))
        with open(os.path.join(out, "estimator.json")) as f:
            meta = json.load(f)
        self.assertEqual(meta["provenance"]["config"]["train_estimator"]["init_checkpoint"], trained_checkpoint())

    def test_dual_certify_records(self):
        root = pipeline()["root"]
        out = self.path("dual")
        run("certify", "-c", pipeline()["config"], "-o", out, "-q", "--method", "dual",
            "--checkpoint", os.path.join(root, "ft", "model.pt"), "--estimator", os.path.join(root, "est", "estimator.pt"))
        with h5py.File(os.path.join(out, "certify.h5"), "r") as f:
            self.assertEqual(f.attrs["method"], "dual_rs")
            self.assertEqual(list(f.attrs["sigma_candidates"]), SIGMAS)
            self.assertAlmostEqual(f.attrs["alpha_e"], 0.0005)
            pred, radius = f["prediction"][:], f["radius"][:]
            r_sigma, r_c, sidx = f["r_sigma"][:], f["r_c"][:], f["sigma_index"][:]
            est = f["estimator_counts"][:]
            self.assertTrue(np.all(est.sum(axis=1) == 100))
            for i in range(len(pred)):
                if pred[i] >= 0:
                    self.assertEqual(radius[i], min(r_sigma[i], r_c[i]))
                    self.assertEqual(f["sigma"][i], SIGMAS[sidx[i]])
                else:
                    self.assertEqual(radius[i], 0.0)
                if sidx[i] >= 0:
                    # R_sigma recomputed with SciPy from the estimator's counts.
                    sel = int(np.argmax(f["estimator_counts_selection"][i]))
                    self.assertEqual(sel, sidx[i])
                    p = stats.beta.ppf(0.0005, est[i, sel], 100 - est[i, sel] + 1)
                    self.assertAlmostEqual(r_sigma[i], 1.0 * stats.norm.ppf(p), delta=1e-9)

    def test_dual_and_multiscale_predict(self):
        root = pipeline()["root"]
        cfg = json.load(open(pipeline()["config"]))
        cfg["predict"] = {"n": 100, "alpha": 0.001, "batch_size": 50, "selection": {"split": "test", "end": 5}}
        path = self.write_json("p.json", cfg)
        for method, name in (("dual", "predict_dual"), ("multiscale", "predict_ms")):
            run("predict", "-c", path, "-o", self.path(name), "-q", "--method", method,
                "--estimator", os.path.join(root, "est", "estimator.pt"))
            with h5py.File(os.path.join(self.path(name), "predict.h5"), "r") as f:
                self.assertEqual(f.attrs["schema"], "dualrs.predict")
                self.assertEqual(len(f["idx"]), 5)
                counts = f["counts"][:]
                for i in range(5):
                    if f["prediction"][i] >= 0:
                        # A non-abstaining answer is the top class of the votes it was decided on.
                        self.assertEqual(f["prediction"][i], int(np.argmax(counts[i])))

    def test_multiscale_certify(self):
        out = self.path("ms")
        run("certify", "-c", pipeline()["config"], "-o", out, "-q", "--method", "multiscale")
        with h5py.File(os.path.join(out, "certify.h5"), "r") as f:
            self.assertEqual(f.attrs["method"], "multiscale")
            for i in range(len(f["idx"])):
                if f["prediction"][i] >= 0:
                    self.assertEqual(f["sigma"][i], SIGMAS[f["sigma_index"][i]])
                    self.assertLessEqual(f["radius"][i], f["r_c"][i])


class DualBadInputTest(TempDirTestCase):
    def fails(self, args, *needles):
        proc = run(*args, check=False)
        self.assertNotEqual(proc.returncode, 0, proc.stderr)
        for needle in needles:
            self.assertIn(needle, proc.stderr)
        return proc

    def test_sigma_candidates_must_be_sorted_unique_positive(self):
        for sigmas, pointer in [([0.5, 0.25], "/dual/sigma_candidates/1"), ([0.25, 0.25], "/dual/sigma_candidates/1"),
                                ([0, 0.5], "/dual/sigma_candidates/0")]:
            cfg = dual_config()
            cfg["dual"]["sigma_candidates"] = sigmas
            self.fails(["label", "-c", self.write_json("c.json", cfg), "-o", self.path("l")], pointer)

    def test_sigma_e_below_max_sigma(self):
        cfg = dual_config()
        cfg["dual"]["sigma_e"] = 0.5
        self.fails(["label", "-c", self.write_json("c.json", cfg), "-o", self.path("l")], "/dual/sigma_e",
                   "allow_sigma_e_below_max")

    def test_routing_config_missing_an_expert(self):
        cfg = dual_config()
        cfg["dual"]["experts"] = [{"arch": "mnist_cnn", "checkpoint": trained_checkpoint(), "sigma": 0.25},
                                  {"arch": "mnist_cnn", "checkpoint": trained_checkpoint(), "sigma": 0.5}]
        self.fails(["label", "-c", self.write_json("c.json", cfg), "-o", self.path("l")], "no expert for sigma = 1.0")

    def test_labels_of_another_sigma_set_are_refused(self):
        cfg = dual_config()
        cfg["dual"]["sigma_candidates"] = [0.25, 0.5, 2.0]
        cfg["dual"]["sigma_e"] = 2.0
        labels = os.path.join(pipeline()["root"], "label", "labels.h5")
        out = self.path("est")
        os.makedirs(out)
        open(os.path.join(out, "estimator.pt"), "w").write("earlier result")
        self.fails(["train-estimator", "-c", self.write_json("c.json", cfg), "-o", out, "--labels", labels],
                   "sigma_candidates {0.25, 0.5, 1.0}", "{0.25, 0.5, 2.0}")
        self.assertEqual(open(os.path.join(out, "estimator.pt")).read(), "earlier result")

    def test_labels_of_another_split_or_n_are_refused(self):
        cfg = dual_config()
        cfg["label"]["n"] = 50
        labels = os.path.join(pipeline()["root"], "label", "labels.h5")
        self.fails(["train-estimator", "-c", self.write_json("c.json", cfg), "-o", self.path("e"), "--labels", labels],
                   "n = 30", "n = 50")

    def test_all_zero_labels_are_refused(self):
        labels = self.path("zero.h5")
        shutil.copy(os.path.join(pipeline()["root"], "label", "labels.h5"), labels)
        with h5py.File(labels, "r+") as f:
            f["radii"][...] = 0
            f["best"][...] = -1
        self.fails(["train-estimator", "-c", pipeline()["config"], "-o", self.path("e"), "--labels", labels],
                   "zero.h5", "radius 0")

    def test_init_checkpoint_missing_or_of_another_architecture(self):
        labels = os.path.join(pipeline()["root"], "label", "labels.h5")
        self.fails(["train-estimator", "-c", pipeline()["config"], "-o", self.path("e1"), "--labels", labels,
                    "--init-checkpoint", self.path("missing.pt")], "checkpoint not found", "missing.pt")
        cfg = dual_config()
        cfg["dual"]["estimator"]["arch"] = "cifar_resnet20"
        self.fails(["train-estimator", "-c", self.write_json("c.json", cfg), "-o", self.path("e2"), "--labels", labels,
                    "--init-checkpoint", trained_checkpoint()], trained_checkpoint(), "cifar_resnet20")

    def test_estimator_with_the_wrong_output_size(self):
        # The 10-class base classifier is not a 3-way sigma estimator.
        self.fails(["certify", "-c", pipeline()["config"], "-o", self.path("c"), "--method", "dual"],
                   "/dual/estimator/checkpoint")
        cfg = dual_config()
        cfg["dual"]["estimator"]["checkpoint"] = trained_checkpoint()
        self.fails(["certify", "-c", self.write_json("c.json", cfg), "-o", self.path("c"), "--method", "dual"],
                   "estimator checkpoint", "|sigma_candidates| = 3")


if __name__ == "__main__":
    unittest.main()
