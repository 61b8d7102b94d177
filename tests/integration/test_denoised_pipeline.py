"""Denoised smoothing end to end on real digits (small settings): timestep, check-model,
train-denoiser (+ resume), certify with a denoiser, the whole Dual RS pipeline through a job,
and the bad inputs of the denoiser issue."""
import csv
import hashlib
import json
import os
import tempfile
import unittest

import h5py
from scipy import stats

from dualrs_testlib import TEST_DATA, TempDirTestCase, run, small_config, trained_checkpoint

SIGMAS = [0.25, 0.5, 1.0]
_denoiser = {}


def read_json(path):
    with open(path) as f:
        return json.load(f)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_lines(path):
    with open(path) as f:
        return f.read().splitlines()


def reference():
    return read_json(os.path.join(TEST_DATA, "diffusion_reference.json"))


def denoiser_section(**extra):
    section = {"arch": "mnist_unet", "schedule": "linear", "steps": 1000}
    section.update(extra)
    return section


def tiny_denoiser():
    """Trains a tiny mnist_unet once per process (1 epoch, 96 digits); returns its folder."""
    if not _denoiser:
        root = tempfile.mkdtemp(prefix="dualrs_it_denoiser_")
        cfg = small_config(denoiser=denoiser_section(),
                           train_denoiser={"epochs": 1, "batch_size": 32, "sigmas": SIGMAS, "validation_fraction": 0.25,
                                           "selection": {"split": "train", "end": 96}})
        path = os.path.join(root, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        run("train-denoiser", "-c", path, "-o", os.path.join(root, "den"), "-q")
        _denoiser.update(root=root, config=path, dir=os.path.join(root, "den"))
    return _denoiser


class TimestepCliTest(TempDirTestCase):
    def test_matches_numpy_for_the_papers_schedules(self):
        for sched in reference()["schedules"][:2]:  # cosine 4000, linear 1000
            for ref in sched["steps_for_sigma"]:
                out = json.loads(run("timestep", "--schedule", sched["kind"], "--steps", sched["steps"],
                                     "--sigma", repr(ref["sigma"])).stdout)
                self.assertEqual(out["t"], ref["t"])
                for key in ("network_timestep", "sqrt_alpha_bar", "effective_sigma"):
                    self.assertAlmostEqual(out[key], ref[key], delta=1e-12 * max(1.0, abs(ref[key])))

    def test_sigma_outside_the_schedule_and_bad_flags(self):
        proc = run("timestep", "--schedule", "linear", "--steps", 1000, "--sigma", 500, check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("--sigma", proc.stderr)
        self.assertIn("outside", proc.stderr)
        for args, needle in [(("--schedule", "sqrt", "--steps", 10, "--sigma", 0.5), "--schedule"),
                             (("--schedule", "linear", "--steps", 10, "--sigma", 0.5), "--steps"),
                             (("--schedule", "linear", "--steps", 1000, "--sigma", 0), "--sigma")]:
            proc = run("timestep", *args, check=False)
            self.assertNotEqual(proc.returncode, 0, args)
            self.assertIn(needle, proc.stderr)


class CheckModelCliTest(TempDirTestCase):
    def test_valid_models_print_a_summary(self):
        out = json.loads(run("check-model", os.path.join(TEST_DATA, "eps_learned_sigma.pt"), "--contract", "epsilon",
                             "--input-shape", "3,32,32").stdout)
        self.assertTrue(out["ok"])
        self.assertTrue(out["learned_sigma"])
        self.assertEqual(out["output_shape"], [3, 6, 32, 32])
        out = json.loads(run("check-model", os.path.join(TEST_DATA, "ts_mean_scaled.pt"), "--contract", "classifier-pm1",
                             "--input-shape", "1,28,28", "--num-classes", 10).stdout)
        self.assertEqual(out["num_classes"], 10)

    def test_violations_name_the_file_and_exit_non_zero(self):
        garbage = self.path("not_torchscript.pt")
        with open(garbage, "w") as f:
            f.write("hello")
        for model, contract, needle in [(os.path.join(TEST_DATA, "eps_bad_shape.pt"), "epsilon", "[B, C, H, W]"),
                                        (os.path.join(TEST_DATA, "ts_needs_unit_range.pt"), "classifier-pm1", "[0, 1]"),
                                        (garbage, "epsilon", "not_torchscript.pt"),
                                        (self.path("missing.pt"), "classifier", "not found")]:
            proc = run("check-model", model, "--contract", contract, check=False)
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn(os.path.basename(model), proc.stderr)
            self.assertIn(needle, proc.stderr)
            self.assertEqual(proc.stderr.count("\n"), 1, proc.stderr)
        proc = run("check-model", garbage, "--contract", "vit", check=False)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--contract", proc.stderr)


class TrainDenoiserTest(TempDirTestCase):
    def test_outputs_and_sidecar(self):
        d = tiny_denoiser()["dir"]
        for name in ("denoiser.pt", "denoiser.json", "train_log.csv", "optimizer.pt", "train_state.json"):
            self.assertTrue(os.path.exists(os.path.join(d, name)), name)
        meta = read_json(os.path.join(d, "denoiser.json"))
        self.assertEqual((meta["schedule"], meta["steps"], meta["arch"]), ("linear", 1000, "mnist_unet"))
        lin = reference()["schedules"][1]
        t_star = {ref["sigma"]: ref["t"] for ref in lin["steps_for_sigma"]}
        for w in meta["timestep_windows"]:
            self.assertEqual(w["t_star"], t_star[w["sigma"]])
            self.assertLessEqual(w["t_min"], w["t_star"])
            self.assertGreaterEqual(w["t_max"], w["t_star"])
        log = read_lines(os.path.join(d, "train_log.csv"))
        self.assertEqual(log[0], "epoch,loss,val_rmse_sigma_0.25,val_rmse_sigma_0.5,val_rmse_sigma_1.0,lr,seconds")
        self.assertEqual(len(log), 2)

    def test_rerun_resumes_after_the_last_epoch(self):
        src = tiny_denoiser()
        out = self.path("den")
        cfg = read_json(src["config"])
        cfg["train_denoiser"]["epochs"] = 1
        path = self.write_json("config.json", cfg)
        run("train-denoiser", "-c", path, "-o", out, "-q")
        first = read_lines(os.path.join(out, "train_log.csv"))
        proc = run("train-denoiser", "-c", path, "-o", out, "--epochs", 2)
        self.assertIn("resuming after epoch 1", proc.stderr)
        log = read_lines(os.path.join(out, "train_log.csv"))
        self.assertEqual(len(log), 3)
        self.assertEqual(log[:2], first)  # epoch 1 kept, epoch 2 appended
        # Another seed is another run: no resume.
        proc = run("train-denoiser", "-c", path, "-o", out, "--epochs", 2, "--seed", 9)
        self.assertNotIn("resuming", proc.stderr)

    def test_the_same_config_trains_the_same_weights(self):
        # The fresh ε-model's weights come from /train_denoiser/seed (they once came from
        # LibTorch's unseeded default generator, so two runs of one config differed).
        cfg = read_json(tiny_denoiser()["config"])
        cfg["train_denoiser"].update(epochs=1, selection={"split": "train", "end": 40})
        path = self.write_json("config.json", cfg)
        digests, losses = [], []
        for name in ("a", "b"):
            run("train-denoiser", "-c", path, "-o", self.path(name), "-q")
            digests.append(sha(self.path(name, "denoiser.pt")))
            losses.append([line.rsplit(",", 1)[0] for line in read_lines(self.path(name, "train_log.csv"))])
        self.assertEqual(digests[0], digests[1])
        self.assertEqual(losses[0], losses[1])
        run("train-denoiser", "-c", path, "-o", self.path("c"), "-q", "--seed", 9)
        self.assertNotEqual(sha(self.path("c", "denoiser.pt")), digests[0])


def denoised_config(**extra):
    cfg = small_config(denoiser=denoiser_section(checkpoint=os.path.join(tiny_denoiser()["dir"], "denoiser.pt")))
    cfg["model"]["checkpoint"] = trained_checkpoint()
    cfg["certify"].update({"sigma": 0.5, "n0": 10, "n": 60, "selection": {"split": "test", "end": 4}})
    cfg.update(extra)
    return cfg


class CertifyWithDenoiserTest(TempDirTestCase):
    def test_records_follow_the_rule_and_name_the_method_dds(self):
        path = self.write_json("config.json", denoised_config())
        run("certify", "-c", path, "-o", self.path("out"), "-q")
        with h5py.File(self.path("out", "certify.h5"), "r") as f:
            self.assertEqual(f.attrs["method"], "dds_global_sigma_0.5")
            config = json.loads(f.attrs["config"])
            self.assertEqual(config["denoiser"]["schedule"], "linear")
            self.assertEqual(hashlib.sha256(f.attrs["config"].encode()).hexdigest(), f.attrs["config_sha256"])
            counts, pred, radius = f["counts"][:], f["prediction"][:], f["radius"][:]
            self.assertEqual(counts.shape, (4, 10))
            for i in range(4):
                self.assertEqual(counts[i].sum(), 60)
                if pred[i] >= 0:
                    p = stats.beta.ppf(0.001, counts[i][pred[i]], 60 - counts[i][pred[i]] + 1)
                    self.assertAlmostEqual(radius[i], 0.5 * stats.norm.ppf(p), delta=1e-9)

    def test_predict_through_the_denoiser(self):
        cfg = denoised_config()
        cfg["predict"] = {"sigma": 0.25, "n": 40, "alpha": 0.001, "batch_size": 40, "selection": {"split": "test", "end": 3}}
        path = self.write_json("config.json", cfg)
        run("predict", "-c", path, "-o", self.path("out"), "-q")
        with h5py.File(self.path("out", "predict.h5"), "r") as f:
            self.assertEqual(f.attrs["method"], "dds_predict_global_sigma_0.25")
            self.assertTrue(all(c.sum() == 40 for c in f["counts"][:]))

    def test_a_torchscript_epsilon_model_serves_too(self):
        cfg = denoised_config(denoiser={"torchscript": os.path.join(TEST_DATA, "eps_zero.pt"), "schedule": "cosine",
                                        "steps": 4000})
        path = self.write_json("config.json", cfg)
        run("certify", "-c", path, "-o", self.path("out"), "-q")
        self.assertTrue(os.path.exists(self.path("out", "certify.tsv")))


class DenoisedJobTest(TempDirTestCase):
    def test_whole_pipeline_through_a_job(self):
        cfg = small_config(denoiser=denoiser_section())
        cfg["train_denoiser"] = {"epochs": 1, "batch_size": 32, "selection": {"split": "train", "end": 96}}
        cfg["train_base"] = {"epochs": 1, "batch_size": 64, "sigma": 0, "selection": {"split": "train", "end": 600}}
        cfg["dual"] = {"sigma_candidates": SIGMAS, "sigma_e": 1.0, "estimator": {"arch": "mnist_cnn"}}
        cfg["label"] = {"n": 16, "batch_size": 16, "selection": {"split": "train", "end": 40}}
        cfg["train_estimator"] = {"epochs": 1, "batch_size": 16, "lambda": 5.0, "validation_fraction": 0.2}
        cfg["estimate_sigma"] = {"n": 4, "batch_size": 4, "selection": {"split": "train", "end": 40}}
        cfg["finetune"] = {"epochs": 1, "batch_size": 16}
        cfg["certify"].update({"n0": 8, "n": 32, "batch_size": 40, "selection": {"split": "test", "end": 3}})
        cfg["table"] = {"radii": [0, 0.5], "convention": "inclusive"}
        self.write_json("config.json", cfg)
        den = {"denoiser": {"checkpoint": "${out}/train_denoiser/denoiser.pt"}}
        base = {**den, "model": {"checkpoint": "${out}/train_base/model.pt"}}
        est = {"dual": {"estimator": {"arch": "mnist_cnn", "checkpoint": "${out}/train_estimator/estimator.pt"}}}
        job = {"name": "tiny_dds", "config": "config.json", "stages": [
            {"name": "train_denoiser", "command": "train-denoiser"},
            {"name": "train_base", "command": "train-base"},
            {"name": "label", "command": "label", "set": base},
            {"name": "train_estimator", "command": "train-estimator",
             "set": {**den, "train_estimator": {"labels": "${out}/label/labels.h5"}}},
            {"name": "estimate_sigma", "command": "estimate-sigma", "set": {**den, **est}},
            {"name": "finetune", "command": "finetune",
             "set": {**base, "finetune": {"estimates": "${out}/estimate_sigma/sigma_estimates.h5"}}},
            {"name": "certify_global", "command": "certify", "set": {**base, "certify": {"method": "global", "sigma": 1.0}}},
            {"name": "certify_dual", "command": "certify",
             "set": {**den, **est, "model": {"checkpoint": "${out}/finetune/model.pt"}, "certify": {"method": "dual"}}},
            {"name": "table", "command": "table", "out": "${out}",
             "inputs": ["${out}/certify_global/certify.h5", "${out}/certify_dual/certify.h5"]},
        ]}
        path = self.write_json("job.json", job)
        out = self.path("run")
        run("run", path, "--out", out, "-q")
        with open(os.path.join(out, "certified_accuracy.csv")) as f:
            methods = {row["method"] for row in csv.DictReader(f)}
        self.assertEqual(methods, {"dds_global_sigma_1.0", "dds_dual_rs"})
        with h5py.File(os.path.join(out, "certify_dual", "certify.h5"), "r") as f:
            self.assertEqual(f["estimator_counts"].shape, (3, 3))
            self.assertTrue(all(c.sum() == 32 for c in f["estimator_counts"][:]))
        # The estimator was trained behind the denoiser: its provenance says so.
        meta = read_json(os.path.join(out, "train_estimator", "estimator.json"))
        self.assertEqual(meta["provenance"]["config"]["denoiser"]["arch"], "mnist_unet")
        # Denoised labels do not train a plain estimator.
        del cfg["denoiser"]
        plain = self.write_json("plain.json", cfg)
        proc = run("train-estimator", "-c", plain, "-o", self.path("plain_est"), "--labels",
                   os.path.join(out, "label", "labels.h5"), check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("/denoiser", proc.stderr)
        self.assertIn("made with a denoiser", proc.stderr)
        self.assertFalse(os.path.exists(self.path("plain_est", "estimator.pt")))


class DenoiserBadInputTest(TempDirTestCase):
    def certify_with(self, cfg):
        path = self.write_json("bad.json", cfg)
        return run("certify", "--config", path, "--out", self.path("out"), "--quiet", check=False)

    def assert_fails_naming(self, proc, *needles):
        self.assertNotEqual(proc.returncode, 0, proc.stderr)
        for needle in needles:
            self.assertIn(needle, proc.stderr)
        self.assertNotIn("terminate called", proc.stderr)
        self.assertFalse(os.path.exists(self.path("out", "certify.h5")))

    def test_sigma_outside_the_schedule(self):
        cfg = denoised_config()
        cfg["certify"]["sigma"] = 200.0
        self.assert_fails_naming(self.certify_with(cfg), "bad.json", "/certify/sigma", "outside")

    def test_epsilon_model_violating_its_contract(self):
        cfg = denoised_config(denoiser={"torchscript": os.path.join(TEST_DATA, "eps_bad_channels.pt"), "schedule": "linear",
                                        "steps": 1000})
        self.assert_fails_naming(self.certify_with(cfg), "eps_bad_channels.pt", "[B, 2C, H, W]")

    def test_denoiser_file_that_is_not_torchscript(self):
        garbage = self.path("eps.pt")
        with open(garbage, "w") as f:
            f.write("not a model")
        cfg = denoised_config(denoiser={"torchscript": garbage, "schedule": "linear", "steps": 1000})
        self.assert_fails_naming(self.certify_with(cfg), "eps.pt")

    def test_schedule_missing_or_mismatched(self):
        cfg = denoised_config()
        del cfg["denoiser"]["schedule"]
        self.assert_fails_naming(self.certify_with(cfg), "/denoiser", "schedule")
        cfg = denoised_config()
        cfg["denoiser"]["steps"] = 4000  # the checkpoint was trained with T = 1000
        self.assert_fails_naming(self.certify_with(cfg), "/denoiser/steps", "denoiser.json")
        cfg = denoised_config()
        cfg["denoiser"]["torchscript"] = os.path.join(TEST_DATA, "eps_zero.pt")
        self.assert_fails_naming(self.certify_with(cfg), "/denoiser", "exactly one")

    def test_bad_input_range(self):
        cfg = denoised_config()
        cfg["model"]["input_range"] = "[0,255]"
        self.assert_fails_naming(self.certify_with(cfg), "/model/input_range")


if __name__ == "__main__":
    unittest.main()
