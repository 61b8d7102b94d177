"""train-base -> certify -> predict -> table on real digits, with outputs checked independently."""
import csv
import hashlib
import json
import os
import unittest

import h5py
import numpy as np
from scipy import stats

from dualrs_testlib import TempDirTestCase, run, small_config, trained_checkpoint


def certify(tmp_case, out_name, end=None, **certify_overrides):
    cfg = small_config()
    cfg["model"]["checkpoint"] = trained_checkpoint()
    cfg["certify"].update(certify_overrides)
    if end is not None:
        cfg["certify"]["selection"]["end"] = end
    path = tmp_case.write_json(out_name + ".json", cfg)
    out = tmp_case.path(out_name)
    run("certify", "--config", path, "--out", out, "--quiet")
    return out


class CertifyPipelineTest(TempDirTestCase):
    def test_training_writes_checkpoint_log_and_metadata(self):
        ckpt = trained_checkpoint()
        folder = os.path.dirname(ckpt)
        with open(os.path.join(folder, "train_log.csv")) as f:
            log = list(csv.DictReader(f))
        self.assertEqual(len(log), 2)
        self.assertGreater(float(log[-1]["accuracy"]), 0.5)  # noisy-train accuracy; chance is 0.1
        meta = json.load(open(os.path.join(folder, "model.json")))
        self.assertEqual(meta["arch"], "mnist_cnn")
        self.assertEqual(meta["provenance"]["config"]["train_base"]["sigma_candidates"], [0.25, 0.5])

    def test_certify_records_are_consistent_with_the_statistics(self):
        out = certify(self, "cert")
        with h5py.File(os.path.join(out, "certify.h5"), "r") as f:
            self.assertEqual(f.attrs["schema"], "dualrs.certify")
            self.assertEqual(f.attrs["method"], "global_sigma_0.25")
            n = int(f.attrs["n"])
            alpha = float(f.attrs["alpha"])
            self.assertEqual((n, int(f.attrs["n0"])), (200, 20))
            idx = f["idx"][:]
            self.assertEqual(len(idx), 12)
            self.assertTrue(np.all(np.diff(idx) > 0))
            # The examples are the first 12 of the test split.
            with open(os.path.join(os.path.dirname(__file__), "..", "..", "data", "mnist", "split", "test.txt")) as s:
                test_split = [int(line) for line in s if line.strip()]
            self.assertEqual(sorted(idx.tolist()), sorted(test_split[:12]))
            counts = f["counts"][:]
            counts0 = f["counts_selection"][:]
            self.assertEqual(counts.shape, (12, 10))
            self.assertTrue(np.all(counts.sum(axis=1) == n))
            self.assertTrue(np.all(counts0.sum(axis=1) == 20))
            pred = f["prediction"][:]
            radius = f["radius"][:]
            p_lower = f["p_a_lower"][:]
            # Recompute CERTIFY from the stored counts with SciPy.
            for i in range(12):
                c_hat = int(np.argmax(counts0[i]))
                n_a = int(counts[i, c_hat])
                p = stats.beta.ppf(alpha, n_a, n - n_a + 1) if n_a > 0 else 0.0
                self.assertAlmostEqual(p_lower[i], p, delta=1e-9 * max(p, 1e-300))
                if p < 0.5:
                    self.assertEqual(pred[i], -1)
                    self.assertEqual(radius[i], 0.0)
                else:
                    self.assertEqual(pred[i], c_hat)
                    self.assertAlmostEqual(radius[i], 0.25 * stats.norm.ppf(p), delta=1e-9)
            self.assertTrue(np.all(f["correct"][:] == (pred == f["label"][:])))
            # Provenance: the resolved config and its hash agree.
            config_text = f.attrs["config"]
            self.assertEqual(hashlib.sha256(config_text.encode()).hexdigest(), f.attrs["config_sha256"])
            self.assertEqual(json.loads(config_text)["certify"]["sigma"], 0.25)
            for key in ("git_revision", "rng_layout_version", "library_versions", "created_utc", "finished_utc", "seed"):
                self.assertIn(key, f.attrs)
        # The Cohen-style TSV says the same thing, with full-precision radii.
        with open(os.path.join(out, "certify.tsv")) as t:
            rows = list(csv.DictReader(t, delimiter="\t"))
        self.assertEqual(list(rows[0].keys()), ["idx", "label", "predict", "radius", "correct", "time"])
        self.assertEqual([int(r["idx"]) for r in rows], idx.tolist())
        self.assertEqual([float(r["radius"]) for r in rows], radius.tolist())
        self.assertEqual([int(r["correct"]) for r in rows], (pred == f_labels(out)).astype(int).tolist())
        self.assertFalse(os.path.exists(os.path.join(out, "certify.h5.tmp")))

    def test_results_do_not_depend_on_the_batch_size(self):
        a = certify(self, "a", batch_size=200)
        b = certify(self, "b", batch_size=7)
        with h5py.File(os.path.join(a, "certify.h5"), "r") as fa, h5py.File(os.path.join(b, "certify.h5"), "r") as fb:
            for name in ("idx", "prediction", "radius", "p_a_lower", "counts", "counts_selection"):
                self.assertTrue(np.array_equal(fa[name][:], fb[name][:]), name)

    def test_grid_noise_and_staged_sampling_are_recorded_and_consistent(self):
        fixed = certify(self, "grid_fixed", noise="grid", batch_size=200)
        small = certify(self, "grid_small_batches", noise="grid", batch_size=7)
        staged = certify(self, "grid_staged", noise="grid", sampling="staged", staged={"num_looks": 4})
        with h5py.File(os.path.join(fixed, "certify.h5"), "r") as f, \
                h5py.File(os.path.join(small, "certify.h5"), "r") as g:
            self.assertEqual(f.attrs["noise"], "grid")
            self.assertEqual(f.attrs["sampling"], "fixed")
            self.assertEqual(f.attrs["method"], "global_sigma_0.25_grid")
            self.assertTrue(np.all(f["n_used"][:] == 220))
            tables = json.loads(f.attrs["config"])["grid_tables"]
            self.assertEqual(list(tables), ["0.25"])
            self.assertEqual(len(tables["0.25"]), 64)
            for name in ("prediction", "radius", "counts", "counts_selection"):
                self.assertTrue(np.array_equal(f[name][:], g[name][:]), name)  # batch size does not matter
            fixed_passes = f["n_used"][:]
        with h5py.File(os.path.join(staged, "certify.h5"), "r") as f:
            self.assertEqual(f.attrs["sampling"], "staged")
            self.assertEqual(f.attrs["method"], "global_sigma_0.25_grid_staged")
            used = f["n_used"][:]
            self.assertTrue(np.all(used <= fixed_passes))
            self.assertTrue(np.all(used >= 20 + 25))  # n0 + the first of 4 looks: ceil(200 / 8)
            self.assertTrue(np.array_equal(f["counts"][:].sum(axis=1), used - 20))
            certified = f["prediction"][:] >= 0
            radius, p = f["radius"][:], f["p_a_lower"][:]
            self.assertTrue(np.all(p[certified] > 0.5))
            np.testing.assert_allclose(radius[certified], 0.25 * stats.norm.ppf(p[certified]), rtol=1e-12)
            self.assertTrue(np.all(radius[certified] <= 0.25 * stats.norm.ppf(p[certified])))

    def test_table_matches_an_independent_recomputation(self):
        out = certify(self, "c", end=30)
        table_dir = self.path("table")
        run("table", os.path.join(out, "certify.h5"), "--out", table_dir, "--radii", "0:1:0.25", "--quiet")
        with h5py.File(os.path.join(out, "certify.h5"), "r") as f:
            correct = (f["prediction"][:] == f["label"][:]) & (f["prediction"][:] >= 0)
            radius = f["radius"][:]
        with open(os.path.join(table_dir, "certified_accuracy.csv")) as t:
            rows = list(csv.DictReader(t))
        self.assertEqual(len(rows), 5 * 2)  # 5 radii x 2 conventions
        for row in rows:
            r = float(row["radius"])
            hit = correct & ((radius >= r) if row["convention"] == "inclusive" else (radius > r))
            self.assertEqual(row["method"], "global_sigma_0.25")
            self.assertEqual(float(row["certified_accuracy"]), hit.sum() / len(radius), row)
            self.assertEqual(int(row["num_examples"]), 30)
        md = open(os.path.join(table_dir, "certified_accuracy.md")).read()
        self.assertIn("inclusive", md)
        self.assertIn("strict", md)
        with open(os.path.join(table_dir, "summary.csv")) as s:
            summary = list(csv.DictReader(s))[0]
        self.assertAlmostEqual(float(summary["acr"]), float((radius * correct).mean()), places=12)

    def test_predict_writes_records(self):
        cfg = small_config(predict={"sigma": 0.25, "n": 100, "alpha": 0.001, "batch_size": 50,
                                    "selection": {"split": "test", "end": 5}})
        cfg["model"]["checkpoint"] = trained_checkpoint()
        out = self.path("pred")
        run("predict", "--config", self.write_json("p.json", cfg), "--out", out, "--quiet")
        with h5py.File(os.path.join(out, "predict.h5"), "r") as f:
            self.assertEqual(f.attrs["schema"], "dualrs.predict")
            counts = f["counts"][:]
            self.assertEqual(counts.shape, (5, 10))
            for i in range(5):
                top = np.sort(counts[i])[::-1]
                p = stats.binomtest(int(top[0]), int(top[0] + top[1]), 0.5).pvalue
                self.assertAlmostEqual(f["p_value"][i], p, delta=1e-9 * max(p, 1e-300))
                self.assertEqual(f["prediction"][i] == -1, p > 0.001)


def f_labels(out):
    with h5py.File(os.path.join(out, "certify.h5"), "r") as f:
        return f["label"][:]


if __name__ == "__main__":
    unittest.main()
