"""slurm tier, sharded stages (docs/cluster.md §3): the outputs merged from Slurm's 2-rank stages equal a
local `mpirun -np 2 dualrs run` of the same stages on the same trained models; a label stage
preempted through Slurm (USR1 to the batch shell, as --signal=B:USR1@300 does) requeues itself
and finishes with identical output; the same stage as a job array + merge job, too.
Reads the chain test's outputs (CTest fixture slurm_chain)."""
import glob
import os
import shutil
import subprocess
import tempfile
import unittest

import h5py
import numpy as np

from slurm_testlib import (BIN, CHAIN_OUT, HAVE_SHARDS, NEEDS_SHARDS, cluster_dir, job_info, logs, quick_job,
                           run, run_tests, submit_job, wait_for_jobs, wait_until, write_json)

SHARDED = ["label", "estimate_sigma", "certify_global_sigma_0.5", "certify_dual_rs"]
OUTPUTS = {"label": "label/labels.h5", "estimate_sigma": "estimate_sigma/sigma_estimates.h5",
           "certify_global_sigma_0.5": "certify_global_sigma_0.5/certify.h5",
           "certify_dual_rs": "certify_dual_rs/certify.h5"}
TRAINED = ["train_base", "train_estimator", "finetune"]


def datasets(path):
    """Every dataset of an HDF5 file except timings, as numpy arrays."""
    found = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and "time" not in name:
                found[name] = obj[()]
        f.visititems(visit)
    return found


class ShardedSlurmTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not HAVE_SHARDS:
            raise unittest.SkipTest(NEEDS_SHARDS)
        cluster_dir()
        cls.chain = os.path.join(CHAIN_OUT, "run")
        if not os.path.exists(os.path.join(cls.chain, "stage-table.json")):
            raise AssertionError(f"the chain test's outputs are missing in {cls.chain} (CTest fixture slurm_chain)")
        cls.config = os.path.join(CHAIN_OUT, "quick.json")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dualrs_slurm_sharded_")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def out_with_trained_models(self, name):
        """A job folder holding the chain's trained models, so only sharded stages run."""
        out = os.path.join(self.tmp, name)
        for stage in TRAINED:
            shutil.copytree(os.path.join(self.chain, stage), os.path.join(out, stage))
        return out

    def assert_same_output(self, stage, out):
        a = datasets(os.path.join(self.chain, OUTPUTS[stage]))
        b = datasets(os.path.join(out, OUTPUTS[stage]))
        self.assertEqual(sorted(a), sorted(b), stage)
        for name in a:
            self.assertTrue(np.array_equal(a[name], b[name]), f"{stage}: dataset {name} differs")

    def test_merged_outputs_equal_a_local_mpirun_run(self):
        out = self.out_with_trained_models("local")
        job = write_json(os.path.join(self.tmp, "job.json"), quick_job(self.config, stages=SHARDED))
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
        proc = subprocess.run(["mpirun", "-np", "2", "--oversubscribe", BIN, "run", job, "--out", out, "--quiet"],
                              capture_output=True, text=True, env=env, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for stage in SHARDED:
            self.assert_same_output(stage, out)

    def test_preempted_label_stage_requeues_and_finishes_identically(self):
        out = self.out_with_trained_models("preempted")
        job = write_json(os.path.join(self.tmp, "job.json"), quick_job(self.config, stages=["label"]))
        _, jobs = submit_job(job, out)
        label = jobs["label"]
        log_glob = os.path.join(out, "logs", "*.out")
        wait_until(lambda: glob.glob(os.path.join(out, "label", "shards", "*.h5")) or
                   job_info(label).get("JobState") not in ("PENDING", "RUNNING"), 120, "a first published shard")
        self.assertEqual(job_info(label)["JobState"], "RUNNING", f"the stage ended before it could be preempted\n"
                                                                 f"{logs(log_glob)}")
        run(["scancel", "--batch", "--signal=USR1", str(label)])
        wait_until(lambda: int(job_info(label).get("Restarts", "0")) >= 1, 120, f"job {label} to requeue itself")
        self.assertGreater(len(glob.glob(os.path.join(out, "label", "shards", "*.h5"))), 0)
        wait_for_jobs([label], 180, log_glob)
        text = logs(log_glob)
        self.assertIn("requeueing job", text)
        self.assertIn("restart 1", text)
        self.assert_same_output("label", out)

    def test_label_stage_as_a_job_array_merges_identically(self):
        out = self.out_with_trained_models("array")
        manifest = quick_job(self.config, stages=["label"])
        manifest["stages"][0]["slurm"] = {"array": 3, "array_max_running": 2, "ntasks_per_node": 1, "time": "10"}
        job = write_json(os.path.join(self.tmp, "job.json"), manifest)
        _, jobs = submit_job(job, out)
        self.assertEqual(list(jobs), ["label (array)", "label (merge)"])
        wait_for_jobs(list(jobs.values()), 240, os.path.join(out, "logs", "*.out"))
        self.assertEqual(len(glob.glob(os.path.join(out, "logs", f"job.label-{jobs['label (array)']}_*.out"))), 3)
        self.assert_same_output("label", out)
        self.assertTrue(os.path.exists(os.path.join(out, "label", "stage-label.json")))


if __name__ == "__main__":
    run_tests("test_slurm_sharded")
