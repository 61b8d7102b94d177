"""`dualrs run`: a small job end to end, resume, dry run, validation of the shipped jobs."""
import csv
import json
import os
import unittest

from dualrs_testlib import SOURCE, TempDirTestCase, run, small_config


class RunJobTest(TempDirTestCase):
    def make_job(self):
        cfg = small_config()
        cfg["table"] = {"radii": [0, 0.25, 0.5], "convention": "both"}
        self.write_json("config.json", cfg)
        ckpt = {"model": {"checkpoint": "${out}/base/model.pt"}}
        job = {
            "name": "tiny",
            "config": "config.json",
            "stages": [
                {"name": "base", "command": "train-base"},
                {"name": "cert_a", "command": "certify", "set": {**ckpt, "certify": {"sigma": 0.25}}},
                {"name": "cert_b", "command": "certify", "set": {**ckpt, "certify": {"sigma": 0.5}}},
                {"name": "table", "command": "table", "out": "${out}",
                 "inputs": ["${out}/cert_a/certify.h5", "${out}/cert_b/certify.h5"]},
            ],
        }
        return self.write_json("job.json", job)

    def test_job_runs_then_resumes(self):
        job = self.make_job()
        out = self.path("run")
        run("run", job, "--out", out, "--quiet")
        with open(os.path.join(out, "certified_accuracy.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual({r["method"] for r in rows}, {"global_sigma_0.25", "global_sigma_0.5"})
        self.assertEqual(len(rows), 2 * 3 * 2)
        for r in rows:
            self.assertTrue(0.0 <= float(r["certified_accuracy"]) <= 1.0)
        summary = json.load(open(os.path.join(out, "job_summary.json")))
        self.assertEqual([s["name"] for s in summary["stages"]], ["base", "cert_a", "cert_b", "table"])
        mtime = os.path.getmtime(os.path.join(out, "cert_a", "certify.h5"))
        # Re-running skips every finished stage.
        proc = run("run", job, "--out", out)
        self.assertEqual(proc.stderr.count("up to date, skipped"), 4, proc.stderr)
        self.assertEqual(mtime, os.path.getmtime(os.path.join(out, "cert_a", "certify.h5")))
        dry = run("run", job, "--out", out, "--dry-run").stdout
        self.assertIn("cert_b (certify) [up to date]", dry)
        # Changing one stage re-runs it and what follows it, not what comes before.
        changed = json.load(open(job))
        changed["stages"][2]["set"]["certify"]["sigma"] = 1.0
        with open(job, "w") as f:
            json.dump(changed, f)
        dry = run("run", job, "--out", out, "--dry-run").stdout
        self.assertIn("base (train-base) [up to date]", dry)
        self.assertIn("cert_a (certify) [up to date]", dry)
        self.assertNotIn("cert_b (certify) [up to date]", dry)
        self.assertNotIn("table (table) [up to date]", dry)

    def test_invalid_stage_config_is_reported_before_any_work(self):
        job = json.load(open(self.make_job()))
        job["stages"][2]["set"]["certify"]["alpha"] = 2
        path = self.write_json("job.json", job)
        proc = run("run", path, "--out", self.path("run"), check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("/stages/2", proc.stderr)
        self.assertIn("/certify/alpha", proc.stderr)
        self.assertFalse(os.path.exists(self.path("run", "base")))

    def test_shipped_jobs_and_configs_validate(self):
        for rel in ("jobs/mnist_standard_rs.json", "jobs/mnist_dual_rs.json", "jobs/mnist_dual_rs_routing.json",
                    "jobs/imagenet_labels_128gpu.json", "configs/mnist.json", "configs/mnist_dual.json",
                    "configs/imagenet_labels.json"):
            proc = run("validate", os.path.join(SOURCE, rel))
            self.assertIn("valid", proc.stdout)
        dry = run("run", os.path.join(SOURCE, "jobs", "mnist_standard_rs.json"), "--out", self.path("x"),
                  "--dry-run").stdout
        self.assertIn("train_base (train-base)", dry)
        self.assertIn("table (table)", dry)


if __name__ == "__main__":
    unittest.main()
