"""slurm tier: the templates on a real single-node Slurm. sbatch --test-only on every
template; a real 2-rank launch through srun --mpi=pmix; preemption handling of
slurm/lib/launch.sh (signal forwarding, exit 75 -> scontrol requeue -> completion record)
with both launchers, on a stand-in executable so it does not depend on the sharded stages."""
import glob
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import h5py

from slurm_testlib import (BIN, HAVE_SHARDS, HERE, SOURCE, cluster_dir, job_info, logs, quick_config,
                           run, run_tests, sbatch, slurm_env, wait_for_end, wait_for_jobs, wait_until)

SLURM_DIR = os.path.join(SOURCE, "slurm")
FAKE = os.path.join(HERE, "fake_dualrs.sh")


class TemplateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cluster_dir()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dualrs_slurm_")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def env(self, **extra):
        return slurm_env({"DUALRS_ROOT": SOURCE, "DUALRS_SITE": "local", **extra})

    def test_every_template_passes_sbatch_test_only(self):
        argv = {"label": ["label", "-c", "c.json", "-o", "out"],
                "estimate-sigma": ["estimate-sigma", "-c", "c.json", "-o", "out"],
                "certify": ["certify", "-c", "c.json", "-o", "out"],
                "train": ["train-base", "-c", "c.json", "-o", "out"],
                "finetune": ["finetune", "-c", "c.json", "-o", "out"],
                "table": ["table", "a.h5", "-o", "out"],
                "merge": ["merge", "out"],
                "array": ["label", "-c", "c.json", "-o", "out"]}
        templates = sorted(os.path.basename(p)[:-len(".sbatch")] for p in glob.glob(os.path.join(SLURM_DIR, "*.sbatch")))
        self.assertEqual(templates, sorted(argv))
        for name in templates:
            extra = ["--array=0-3%2"] if name == "array" else []
            proc = run(["sbatch", "--test-only", "-n", "2", "--cpus-per-task=1", "--time=10", *extra,
                        os.path.join(SLURM_DIR, name + ".sbatch"), *argv[name]], env=self.env(), check=False)
            self.assertEqual(proc.returncode, 0, f"{name}.sbatch: {proc.stderr}")
            self.assertIn("to start at", proc.stderr, name)

    def test_two_rank_launch_through_srun_pmix(self):
        mpicc = shutil.which("mpicc")
        if mpicc:
            # The launch itself: srun --mpi=pmix gives a real 2-rank MPI world, not two singletons.
            src = os.path.join(self.tmp, "hello.c")
            with open(src, "w") as f:
                f.write('#include <mpi.h>\n#include <stdio.h>\nint main(int c, char** v) { int r, s;\n'
                        'MPI_Init(&c, &v); MPI_Comm_rank(MPI_COMM_WORLD, &r); MPI_Comm_size(MPI_COMM_WORLD, &s);\n'
                        'printf("rank %d of %d\\n", r, s); MPI_Finalize(); return 0; }\n')
            subprocess.run([mpicc, "-o", os.path.join(self.tmp, "hello"), src], check=True)
            log = os.path.join(self.tmp, "hello.out")
            job = sbatch(["-n", "2", "-o", log, "--wrap", f"srun --mpi=pmix {self.tmp}/hello"], env=self.env())
            wait_for_jobs([job], 180, log)
            with open(log) as f:
                self.assertEqual(sorted(f.read().split()), sorted("rank 0 of 2 rank 1 of 2".split()))
        if not HAVE_SHARDS:
            # dualrs without MPI: both tasks of a 2-task srun step run it (the launch works).
            log = os.path.join(self.tmp, "radius.out")
            job = sbatch(["-n", "2", "-o", log, "--wrap",
                          f"srun --mpi=pmix {BIN} radius --count 990 --n 1000 --sigma 0.5 --alpha 0.001"],
                         env=self.env())
            wait_for_jobs([job], 180, log)
            with open(log) as f:
                text = f.read()
            answers = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
            self.assertEqual(len(answers), 2, text)
            self.assertFalse(answers[0]["abstain"])
            return
        # dualrs with MPI: a tiny certification through certify.sbatch on 2 ranks, which
        # records the world it ran in.
        cfg_path = os.path.join(self.tmp, "config.json")
        cfg = quick_config()
        cfg["model"] = {"torchscript": os.path.join(SOURCE, "tests", "data", "ts_mean_scaled.pt"), "num_classes": 10}
        cfg["certify"].update(selection={"split": "test", "end": 6}, shard_size=2)
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        out = os.path.join(self.tmp, "certify")
        log = os.path.join(self.tmp, "certify-%j.out")
        job = sbatch(["-n", "2", "-o", log, os.path.join(SLURM_DIR, "certify.sbatch"), "certify", "--config", cfg_path,
                      "--out", out], env=self.env(DUALRS_BIN=BIN))
        wait_for_jobs([job], 240, os.path.join(self.tmp, "certify-*.out"))
        with h5py.File(os.path.join(out, "certify.h5"), "r") as f:
            self.assertEqual(int(f.attrs["world_size"]), 2)
            self.assertEqual(sorted(f["idx"][()].tolist()), sorted(set(f["idx"][()].tolist())))
            self.assertEqual(len(f["idx"]), 6)

    def run_preempted_stub(self, launcher, straggler=False):
        """A 2-rank stage on the stand-in executable: USR1 to the batch shell (what
        --signal=B:USR1@300 does) reaches both ranks, they exit 75, the job requeues itself,
        the second run completes and publishes the completion record."""
        marks = os.path.join(self.tmp, "marks")
        os.makedirs(marks)
        record = os.path.join(self.tmp, "planned.stage.json")
        with open(record, "w") as f:
            json.dump({"name": "label", "fingerprint": "x"}, f)
        record_to = os.path.join(self.tmp, "out", "stage-label.json")
        log = os.path.join(self.tmp, "stub-%j.out")
        job = sbatch(["-n", "2", "--cpus-per-task=1", "-o", log, os.path.join(SLURM_DIR, "label.sbatch"), "label",
                      "--config", "c.json", "--out", "out"],
                     env=self.env(DUALRS_BIN=FAKE, FAKE_DUALRS_DIR=marks, LAUNCHER=launcher,
                                  FAKE_DUALRS_STRAGGLER="1" if straggler else "0",
                                  DUALRS_STAGE_RECORD=record, DUALRS_STAGE_RECORD_TO=record_to))
        logs_glob = os.path.join(self.tmp, "stub-*.out")
        wait_until(lambda: all(os.path.exists(os.path.join(marks, f"started.{r}")) for r in (0, 1)), 180,
                   "both ranks to start")
        self.assertFalse(os.path.exists(record_to))
        run(["scancel", "--batch", "--signal=USR1", str(job)])
        # The test cluster lets a requeued job start again after 10 s (cred_expire).
        wait_until(lambda: int(job_info(job).get("Restarts", "0")) >= 1, 180, "the job to requeue itself")
        wait_for_jobs([job], 180, logs_glob)
        for r in (0, 1):
            self.assertTrue(os.path.exists(os.path.join(marks, f"usr1.{r}")), f"rank {r} got no SIGUSR1\n{logs(logs_glob)}")
            self.assertTrue(os.path.exists(os.path.join(marks, f"done.{r}")),
                            f"rank {r} did not run again: {sorted(os.listdir(marks))}\n{logs(logs_glob)}")
            with open(os.path.join(marks, f"args.1.{r}")) as f:
                args = f.read().split()
            self.assertEqual(args, ["label", "--config", "c.json", "--out", "out", "--expect-world-size", "2"])
        with open(record_to) as f:
            self.assertEqual(json.load(f)["fingerprint"], "x")
        text = logs(logs_glob)
        self.assertIn("requeueing job", text)
        self.assertIn("restart 1", text)
        return text

    def test_preemption_requeues_and_completes_with_srun(self):
        # Rank 0 exits 75 first, and srun (--kill-on-bad-exit) terminates rank 1 before it exits
        # by itself: srun says 143, and the stage still counts as stopped early.
        text = self.run_preempted_stub("srun", straggler=True)
        self.assertIn("the launcher ended the others (status 143)", text)

    def test_preemption_requeues_and_completes_with_mpirun(self):
        self.run_preempted_stub("mpirun")

    def test_stop_request_before_the_ranks_start_requeues_without_running_them(self):
        # A site file that waits for the test lets the signal arrive deterministically while
        # the job is still setting up, before the launcher runs.
        root = os.path.join(self.tmp, "root")
        shutil.copytree(SLURM_DIR, os.path.join(root, "slurm"))
        marks = os.path.join(self.tmp, "marks")
        os.makedirs(marks)
        with open(os.path.join(root, "slurm", "site", "blocking.env"), "w") as f:
            f.write(f'source "{SLURM_DIR}/site/local.env"\ntouch "{marks}/site-loaded"\n'
                    f'until [ -e "{marks}/go" ]; do sleep 0.1; done\n')
        log = os.path.join(self.tmp, "early-%j.out")
        job = sbatch(["-n", "2", "-o", log, os.path.join(root, "slurm", "label.sbatch"), "label", "-c", "c.json"],
                     env=self.env(DUALRS_ROOT=root, DUALRS_SITE="blocking", DUALRS_BIN=FAKE, FAKE_DUALRS_DIR=marks))
        wait_until(lambda: os.path.exists(os.path.join(marks, "site-loaded")), 180, "the job to load its site file")
        run(["scancel", "--batch", "--signal=USR1", str(job)])
        wait_until(lambda: "SIGUSR1" in logs(os.path.join(self.tmp, "early-*.out")), 180, "the signal to arrive")
        open(os.path.join(marks, "go"), "w").close()
        wait_until(lambda: int(job_info(job).get("Restarts", "0")) >= 1, 180, "the job to requeue itself")
        wait_for_jobs([job], 180, os.path.join(self.tmp, "early-*.out"))
        self.assertFalse(os.path.exists(os.path.join(marks, "args.0.0")), "the ranks ran before the requeue")
        self.assertTrue(os.path.exists(os.path.join(marks, "done.0")))
        self.assertIn("asked to stop before the ranks started", logs(os.path.join(self.tmp, "early-*.out")))

    def test_failed_stage_fails_the_job_without_a_record(self):
        marks = os.path.join(self.tmp, "marks")
        os.makedirs(marks)
        record = os.path.join(self.tmp, "planned.stage.json")
        with open(record, "w") as f:
            f.write("{}")
        record_to = os.path.join(self.tmp, "out", "stage-x.json")
        log = os.path.join(self.tmp, "fail-%j.out")
        job = sbatch(["-n", "1", "-o", log, os.path.join(SLURM_DIR, "certify.sbatch"), "certify", "-c", "c.json"],
                     env=self.env(DUALRS_BIN=FAKE, FAKE_DUALRS_DIR=marks, FAKE_DUALRS_FAIL="1",
                                  DUALRS_STAGE_RECORD=record, DUALRS_STAGE_RECORD_TO=record_to))
        self.assertEqual(wait_for_end([job], 180)[job], ["FAILED"])
        self.assertEqual(job_info(job)["ExitCode"], "3:0")
        self.assertFalse(os.path.exists(record_to))
        self.assertIn("certify failed with exit status 3", logs(os.path.join(self.tmp, "fail-*.out")))

    def test_launch_failure_is_a_failure(self):
        # srun exits 0 when its tasks cannot be launched; here a stale PMIx socket of the same
        # step (what a step daemon that has not exited yet leaves) makes the launch fail.
        record = os.path.join(self.tmp, "planned.stage.json")
        with open(record, "w") as f:
            f.write("{}")
        record_to = os.path.join(self.tmp, "out", "stage-x.json")
        log = os.path.join(self.tmp, "stale-%j.out")
        job = sbatch(["-H", "-n", "1", "-o", log, os.path.join(SLURM_DIR, "table.sbatch"), "table", "--out", "x"],
                     env=self.env(DUALRS_BIN=FAKE, FAKE_DUALRS_DIR=self.tmp, DUALRS_STAGE_RECORD=record,
                                  DUALRS_STAGE_RECORD_TO=record_to))
        stale = os.path.join(cluster_dir(), "spool", f"stepd.slurm.pmix.{job}.0")
        open(stale, "w").close()
        try:
            run(["scontrol", "release", str(job)])
            self.assertEqual(wait_for_end([job], 180)[job], ["FAILED"])
        finally:
            os.remove(stale)
        self.assertFalse(os.path.exists(record_to))
        self.assertFalse(glob.glob(os.path.join(self.tmp, "args.*")), "the stand-in ran after all")
        self.assertIn("its tasks were never started", logs(os.path.join(self.tmp, "stale-*.out")))

    def test_template_refuses_a_command_it_does_not_serve(self):
        log = os.path.join(self.tmp, "wrong-%j.out")
        job = sbatch(["-n", "1", "-o", log, os.path.join(SLURM_DIR, "label.sbatch"), "certify", "-c", "c.json"],
                     env=self.env(DUALRS_BIN=FAKE, FAKE_DUALRS_DIR=self.tmp))
        self.assertEqual(wait_for_end([job], 180)[job], ["FAILED"])
        self.assertIn("this template runs 'label', not 'certify'", logs(os.path.join(self.tmp, "wrong-*.out")))


if __name__ == "__main__":
    run_tests("test_slurm_templates")
