"""slurm tier: a quick variant of the MNIST Dual RS job (small subsets, small n; every kind
of stage) submitted through slurm/submit as a chain of sbatch jobs on the test cluster, with
2 ranks per sharded stage where dualrs has them. Its outputs stay in $DUALRS_SLURM_CHAIN_OUT
for the comparisons of test_slurm_sharded.py (CTest fixture slurm_chain)."""
import csv
import glob
import os
import re
import shutil
import subprocess
import unittest

import h5py

from slurm_testlib import (BIN, CHAIN_OUT, HAVE_SHARDS, SUBMIT, cluster_dir, logs, quick_config, quick_job, run_tests,
                           slurm_env, submit_job, wait_for_jobs, write_json)

STAGES = ["train_base", "label", "train_estimator", "estimate_sigma", "finetune", "certify_global_sigma_0.5",
          "certify_dual_rs", "table"]


class SlurmChainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cluster_dir()
        if not CHAIN_OUT:
            raise unittest.SkipTest("DUALRS_SLURM_CHAIN_OUT is not set (run through ctest)")
        shutil.rmtree(CHAIN_OUT, ignore_errors=True)
        os.makedirs(CHAIN_OUT)
        config = write_json(os.path.join(CHAIN_OUT, "quick.json"), quick_config())
        cls.job = write_json(os.path.join(CHAIN_OUT, "quick_job.json"), quick_job(config))
        cls.out = os.path.join(CHAIN_OUT, "run")
        cls.last, cls.jobs = submit_job(cls.job, cls.out)
        wait_for_jobs(list(cls.jobs.values()), 300, os.path.join(cls.out, "logs", "*.out"))

    def test_every_stage_ran_as_its_own_job_in_order(self):
        self.assertEqual(list(self.jobs), STAGES)
        ids = list(self.jobs.values())
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(self.last, ids[-1])
        for stage in STAGES:
            self.assertEqual(len(glob.glob(os.path.join(self.out, "logs", f"quick_job.{stage}-*.out"))), 1, stage)

    def test_outputs_are_complete(self):
        for path in ("train_base/model.pt", "train_estimator/estimator.pt", "finetune/model.pt",
                     "certify_global_sigma_0.5/certify.tsv", "certify_dual_rs/certify.tsv"):
            self.assertTrue(os.path.getsize(os.path.join(self.out, path)) > 0, path)
        for path, count in (("label/labels.h5", 160), ("estimate_sigma/sigma_estimates.h5", 96),
                            ("certify_global_sigma_0.5/certify.h5", 24), ("certify_dual_rs/certify.h5", 24)):
            with h5py.File(os.path.join(self.out, path), "r") as f:
                idx = f["idx"][()].tolist()
                self.assertEqual(len(idx), count, path)
                self.assertEqual(len(set(idx)), count, path)
                if HAVE_SHARDS:
                    self.assertEqual(int(f.attrs["world_size"]), 2, path)
        with open(os.path.join(self.out, "certified_accuracy.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual({r["method"] for r in rows}, {"global_sigma_0.5", "dual_rs"})
        self.assertEqual({float(r["radius"]) for r in rows}, {0.0, 0.25, 0.5, 1.0})

    def test_ranks_and_world_size_guard(self):
        text = logs(os.path.join(self.out, "logs", "quick_job.label-*.out"))
        ranks = 2 if HAVE_SHARDS else 1
        self.assertIn(f"srun --mpi=pmix --kill-on-bad-exit=1 --ntasks={ranks} --cpus-per-task=1", text)
        if HAVE_SHARDS:
            self.assertIn("--expect-world-size 2", text)

    def test_dualrs_run_and_submit_see_the_job_as_done(self):
        dry = subprocess.run([BIN, "run", self.job, "--out", self.out, "--dry-run"], capture_output=True, text=True,
                             check=True).stdout
        self.assertEqual(len(re.findall(r"\[up to date\]", dry)), len(STAGES), dry)
        env = slurm_env({"DUALRS_BIN": BIN})
        proc = subprocess.run([SUBMIT, self.job, "--out", self.out, "--site", "local"], capture_output=True, text=True,
                              env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("nothing submitted", proc.stderr)


if __name__ == "__main__":
    run_tests("test_slurm_chain")
