"""Cost planning: `dualrs calibrate` measures the models a config names, and `dualrs run
--dry-run --calibration FILE --ranks K` projects each stage's wall time and device-hours from
its forward passes. The projection is checked against a measured run of the same stage: a
certification's stage time must lie within a factor of 2.5 of its projection (the projection
counts model forwards only; noise, vote counting and start-up come on top, about 20-40 % here),
and the ranks divide the time but not the device-hours."""
import json
import os
import re
import unittest

from dualrs_testlib import TempDirTestCase, read_json, run, small_config, trained_checkpoint

TOLERANCE = 2.5


def projections(plan):
    """{stage name: (seconds, device-hours)} from a --dry-run plan with a calibration."""
    out, name = {}, None
    for line in plan.splitlines():
        m = re.match(r"  \d+\. (\S+) \(", line)
        if m:
            name = m.group(1)
        m = re.match(r"\s+projected: (.+) on (\d+) ranks? = ([0-9.]+) device-hours", line)
        if m and name:
            out[name] = (seconds(m.group(1)), float(m.group(3)))
    return out


def seconds(text):
    """'1 h 02 min 03 s' / '2 min 05 s' / '12.3 s' -> seconds."""
    total = 0.0
    for value, unit in re.findall(r"([0-9.]+) (h|min|s)\b", text):
        total += float(value) * {"h": 3600, "min": 60, "s": 1}[unit]
    return total


class CalibrateTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        checkpoint = trained_checkpoint()
        self.config = self.write_json("config.json", small_config(
            model={"arch": "mnist_cnn", "num_classes": 10, "checkpoint": checkpoint},
            certify={"sigma": 0.25, "n0": 100, "n": 1000, "alpha": 0.001, "batch_size": 1000, "seed": 3,
                     "selection": {"split": "test", "begin": 0, "end": 80}}))
        self.job = self.write_json("job.json", {"name": "calibrated", "config": self.config,
                                                "stages": [{"name": "certify", "command": "certify"}]})
        self.calibration = self.path("calibration.json")
        run("calibrate", "-c", self.config, "-o", self.calibration, "--seconds", "1", "--quiet")

    def test_calibration_file_names_device_models_and_rates(self):
        c = read_json(self.calibration)
        self.assertEqual(c["schema"], "dualrs.calibration")
        self.assertEqual(c["device"], "cpu")
        self.assertEqual(c["threads"], 1)  # the tests run one thread
        self.assertIn("torch", c["library_versions"])
        self.assertEqual(sorted(c["rates"]), ["classifier", "classifier training"])
        self.assertEqual(c["rates"]["classifier"]["weights"], "checkpoint")
        self.assertEqual(c["rates"]["classifier"]["batch_size"], 1000)
        for rate in c["rates"].values():
            self.assertGreater(rate["samples_per_s"], 100)
        # Training a step costs more than a frozen forward of the same rows.
        self.assertLess(c["rates"]["classifier training"]["samples_per_s"], c["rates"]["classifier"]["samples_per_s"])
        self.assertGreater(c["input"]["images_per_s"], 0)

    def test_projection_matches_a_measured_run_and_ranks_divide_the_time(self):
        plan1 = run("run", self.job, "--out", self.path("out"), "--dry-run", "--calibration", self.calibration).stdout
        plan4 = run("run", self.job, "--out", self.path("out"), "--dry-run", "--calibration", self.calibration,
                    "--ranks", "4").stdout
        p1, p4 = projections(plan1)["certify"], projections(plan4)["certify"]
        # 80 digits x (100 + 1,000) copies at the measured rate.
        rate = read_json(self.calibration)["rates"]["classifier"]["samples_per_s"]
        self.assertAlmostEqual(p1[0], 80 * 1100 / rate, delta=0.06 + 0.01 * p1[0])
        self.assertAlmostEqual(p4[0], p1[0] / 4, delta=0.06 + 0.01 * p1[0])
        self.assertAlmostEqual(p4[1], p1[1], delta=0.0002)  # device-hours do not depend on the ranks
        self.assertIn("projected in all:", plan1)
        run("run", self.job, "--out", self.path("out"), "--quiet")
        measured = [s for s in read_json(self.path("out", "job_summary.json"))["stages"] if s["name"] == "certify"]
        actual = measured[0]["seconds"]
        print(f"certify: projected {p1[0]:.2f} s, measured {actual:.2f} s, ratio {actual / p1[0]:.2f}")
        self.assertLess(actual / p1[0], TOLERANCE, (actual, p1[0]))
        self.assertGreater(actual / p1[0], 1 / TOLERANCE, (actual, p1[0]))

    def test_denoiser_not_yet_trained_is_measured_with_fresh_weights_and_projected(self):
        cfg = read_json(self.config)
        cfg["denoiser"] = {"arch": "mnist_unet", "schedule": "linear", "steps": 1000, "device": "cpu",
                           "checkpoint": self.path("not_yet", "denoiser.pt")}
        cfg["certify"]["batch_size"] = 100
        config = self.write_json("denoised.json", cfg)
        calibration = self.path("denoised_calibration.json")
        run("calibrate", "-c", config, "-o", calibration, "--seconds", "0.3", "--quiet")
        rates = read_json(calibration)["rates"]
        self.assertEqual(rates["denoiser"]["weights"], "fresh")
        self.assertEqual(rates["denoiser"]["arch"], "mnist_unet")
        # The U-Net costs more per copy than the CNN classifier behind it.
        self.assertLess(rates["denoiser"]["samples_per_s"], rates["classifier"]["samples_per_s"])
        job = self.write_json("denoised_job.json", {"name": "denoised", "config": config,
                                                    "stages": [{"name": "certify", "command": "certify"}]})
        plan = run("run", job, "--out", self.path("out"), "--dry-run", "--calibration", calibration).stdout
        self.assertIn("denoiser", plan)
        self.assertNotIn("unmeasured", plan)
        per_copy = 1 / rates["classifier"]["samples_per_s"] + 1 / rates["denoiser"]["samples_per_s"]
        self.assertAlmostEqual(projections(plan)["certify"][0], 80 * 1100 * per_copy, delta=0.06 + 0.01 * 80 * 1100 * per_copy)

    def test_calibration_of_another_model_warns_naming_both(self):
        c = read_json(self.calibration)
        c["rates"]["classifier"]["arch"] = "cifar_resnet20"
        other = self.write_json("other.json", c)
        proc = run("run", self.job, "--out", self.path("out"), "--dry-run", "--calibration", other)
        self.assertRegex(proc.stdout, r"warning: calibration .*other\.json: classifier: the stage uses mnist_cnn on cpu in "
                                      r"fp32, the calibration measured cifar_resnet20 on cpu in fp32")
        self.assertEqual(read_json(self.calibration)["rates"]["classifier"]["precision"], "fp32")
        c = read_json(self.calibration)
        c["rates"]["classifier"]["precision"] = "bf16"
        other = self.write_json("other_precision.json", c)
        proc = run("run", self.job, "--out", self.path("out"), "--dry-run", "--calibration", other)
        self.assertRegex(proc.stdout, r"classifier: the stage uses mnist_cnn on cpu in fp32, the calibration measured "
                                      r"mnist_cnn on cpu in bf16")

    def test_bad_calibration_and_ranks_are_refused_by_name(self):
        c = read_json(self.calibration)
        c["rates"]["classifier"]["samples_per_s"] = 0
        bad = self.write_json("bad.json", c)
        for args, needle in ((["--calibration", bad], "/rates/classifier/samples_per_s"),
                             (["--calibration", self.path("missing.json")], "missing.json"),
                             (["--calibration", self.calibration, "--ranks", "0"], "--ranks"),
                             (["--calibration", self.config], "/schema")):
            with self.subTest(args=args):
                proc = run("run", self.job, "--out", self.path("out"), "--dry-run", *args, check=False)
                self.assertNotEqual(proc.returncode, 0)
                self.assertIn(needle, proc.stderr)
        self.assertFalse(os.path.exists(self.path("out")))  # a dry run writes nothing
        proc = run("calibrate", "-c", self.config, "-o", self.path("x.json"), "--seconds", "0", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("--seconds", proc.stderr)
        self.assertFalse(os.path.exists(self.path("x.json")))


if __name__ == "__main__":
    unittest.main()
