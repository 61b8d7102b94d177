"""Bad input: one clear line naming the file, key or example; a non-zero exit; earlier outputs intact."""
import gzip
import hashlib
import os
import shutil
import unittest

from dualrs_testlib import DATA, TEST_DATA, TempDirTestCase, run, small_config, trained_checkpoint


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class BadInputTest(TempDirTestCase):
    def certify_with(self, cfg, *extra):
        path = self.write_json("bad.json", cfg)
        return run("certify", "--config", path, "--out", self.path("out"), "--quiet", *extra, check=False)

    def assert_fails_naming(self, proc, *needles):
        self.assertNotEqual(proc.returncode, 0, proc.stderr)
        for needle in needles:
            self.assertIn(needle, proc.stderr)
        self.assertNotIn("terminate called", proc.stderr)

    def test_unknown_key(self):
        cfg = small_config()
        cfg["certify"]["sigmaa"] = 0.5
        self.assert_fails_naming(self.certify_with(cfg), "bad.json", "/certify/sigmaa", "unknown key")

    def test_wrong_type(self):
        cfg = small_config()
        cfg["certify"]["n"] = "ten thousand"
        self.assert_fails_naming(self.certify_with(cfg), "/certify/n")

    def test_out_of_range_values_are_reported_together(self):
        cfg = small_config()
        cfg["certify"].update({"sigma": 0, "alpha": 1.0, "n0": 0, "n": 0, "batch_size": 0})
        proc = self.certify_with(cfg)
        self.assert_fails_naming(proc, "/certify/sigma", "/certify/alpha", "/certify/n0", "/certify/n",
                                 "/certify/batch_size")

    def test_flags_are_validated_like_config_values(self):
        cfg = small_config()
        cfg["model"]["checkpoint"] = trained_checkpoint()
        for flag, value, pointer in [("--sigma", "-0.5", "/certify/sigma"), ("--alpha", "0", "/certify/alpha"),
                                     ("--n0", "0", "/certify/n0"), ("--batch-size", "0", "/certify/batch_size")]:
            self.assert_fails_naming(self.certify_with(cfg, flag, value), pointer)

    def test_bad_noise_and_staged_settings_name_their_keys(self):
        cfg = small_config()
        cfg["certify"]["noise"] = "uniform"
        self.assert_fails_naming(self.certify_with(cfg), "/certify/noise")
        cfg = small_config()
        cfg["certify"]["sampling"] = "sequential"
        self.assert_fails_naming(self.certify_with(cfg), "/certify/sampling")
        cfg = small_config()
        cfg["certify"].update({"sampling": "staged", "staged": {"looks": [50, cfg["certify"]["n"] + 1]}})
        self.assert_fails_naming(self.certify_with(cfg), "/certify/staged/looks/1", "exceeds n")
        cfg = small_config()
        cfg["certify"].update({"sampling": "staged", "staged": {"looks": [40, 20]}})
        self.assert_fails_naming(self.certify_with(cfg), "/certify/staged/looks/1", "increase")
        cfg = small_config()
        cfg["certify"].update({"sampling": "staged", "staged": {"last_look_alpha_share": 1.5}})
        self.assert_fails_naming(self.certify_with(cfg), "/certify/staged/last_look_alpha_share")
        cfg = small_config()
        cfg["certify"]["sampling"] = "staged"
        cfg["table"] = {"radii": [0.5, 0.25]}
        self.assert_fails_naming(self.certify_with(cfg), "/table/radii")

    def test_missing_data_file(self):
        cfg = small_config()
        cfg["model"]["checkpoint"] = trained_checkpoint()
        cfg["dataset"]["images"] = self.path("nope-idx3-ubyte.gz")
        self.assert_fails_naming(self.certify_with(cfg), "nope-idx3-ubyte.gz")

    def test_wrong_idx_magic(self):
        cfg = small_config()
        cfg["model"]["checkpoint"] = trained_checkpoint()
        cfg["dataset"]["images"] = cfg["dataset"]["labels"]  # a label file where images belong
        self.assert_fails_naming(self.certify_with(cfg), "labels-idx1-ubyte.gz", "magic")

    def test_corrupt_data_file(self):
        broken = self.path("images-idx3-ubyte.gz")
        with open(os.path.join(DATA, "images-idx3-ubyte.gz"), "rb") as f:
            data = f.read()
        with open(broken, "wb") as f:
            f.write(data[: len(data) // 2])  # truncated gzip stream
        cfg = small_config()
        cfg["model"]["checkpoint"] = trained_checkpoint()
        cfg["dataset"]["images"] = broken
        self.assert_fails_naming(self.certify_with(cfg), "images-idx3-ubyte.gz")

    def test_torchscript_with_wrong_output_shape(self):
        cfg = small_config()
        cfg["model"] = {"torchscript": os.path.join(TEST_DATA, "ts_bad_shape.pt"), "num_classes": 10}
        self.assert_fails_naming(self.certify_with(cfg), "ts_bad_shape.pt", "[B, K]")

    def test_missing_checkpoint(self):
        cfg = small_config()
        cfg["model"]["checkpoint"] = self.path("absent.pt")
        self.assert_fails_naming(self.certify_with(cfg), "absent.pt")

    def test_a_gpu_device_where_libtorch_sees_none(self):
        version = run("--version").stdout
        if " 0 CUDA device(s) visible" not in version:
            self.skipTest("this dualrs sees a CUDA device")
        cfg = small_config()
        cfg["model"]["checkpoint"] = trained_checkpoint()
        cfg["model"]["device"] = "cuda:0"
        self.assert_fails_naming(self.certify_with(cfg), "device 'cuda:0'", "no CUDA")
        cfg = small_config()
        cfg["model"]["device"] = "cuda"
        proc = run("train-base", "--config", self.write_json("gpu.json", cfg), "--out", self.path("trained"), "--quiet",
                   check=False)
        self.assert_fails_naming(proc, "cuda")
        self.assertFalse(os.path.exists(self.path("trained/model.pt")))
        # The denoiser's device: "cuda" means the rank's GPU, and its absence names the entry.
        cfg = small_config()
        cfg["model"]["checkpoint"] = trained_checkpoint()
        cfg["denoiser"] = {"torchscript": os.path.join(TEST_DATA, "eps_linear.pt"), "schedule": "linear",
                           "steps": 1000, "device": "cuda"}
        self.assert_fails_naming(self.certify_with(cfg), "/denoiser/device", "no CUDA device is visible")
        cfg = small_config(denoiser={"arch": "mnist_unet", "schedule": "linear", "steps": 1000, "device": "cuda"},
                           train_denoiser={"epochs": 1, "selection": {"split": "train", "end": 8}})
        proc = run("train-denoiser", "--config", self.write_json("gpu_den.json", cfg), "--out", self.path("den"),
                   "--quiet", check=False)
        self.assert_fails_naming(proc, "/denoiser/device", "no CUDA device is visible")
        self.assertFalse(os.path.exists(self.path("den/denoiser.pt")))

    def test_failed_run_leaves_earlier_results_untouched(self):
        cfg = small_config()
        cfg["model"]["checkpoint"] = trained_checkpoint()
        cfg["certify"]["selection"]["end"] = 3
        good = self.write_json("good.json", cfg)
        out = self.path("out")
        run("certify", "--config", good, "--out", out, "--quiet")
        before = {name: sha(os.path.join(out, name)) for name in ("certify.h5", "certify.tsv")}
        cfg["model"] = {"torchscript": os.path.join(TEST_DATA, "ts_bad_shape.pt"), "num_classes": 10}
        proc = run("certify", "--config", self.write_json("bad.json", cfg), "--out", out, "--quiet", check=False)
        self.assertNotEqual(proc.returncode, 0)
        after = {name: sha(os.path.join(out, name)) for name in ("certify.h5", "certify.tsv")}
        self.assertEqual(before, after)
        # The folder also holds the shards the results were merged from and the rank logs;
        # nothing partial is left anywhere.
        self.assertEqual(sorted(os.listdir(out)), ["certify.h5", "certify.tsv", "logs", "shards"])
        for folder, _, files in os.walk(out):
            self.assertEqual([f for f in files if f.endswith(".tmp") or f.endswith(".lock")], [], folder)

    def test_table_of_a_missing_or_foreign_file(self):
        proc = run("table", self.path("absent.h5"), "--out", self.path("t"), check=False)
        self.assert_fails_naming(proc, "absent.h5")
        not_results = self.path("not_results.h5")
        shutil.copy(os.path.join(TEST_DATA, "ts_mean_scaled.pt"), not_results)
        self.assert_fails_naming(run("table", not_results, "--out", self.path("t"), check=False), "not_results.h5")

    def test_unknown_subcommand_and_flag(self):
        proc = run("certfy", check=False)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("unknown command", proc.stderr)
        proc = run("certify", "--sigmaa", "1", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("sigmaa", proc.stderr)


if __name__ == "__main__":
    unittest.main()
