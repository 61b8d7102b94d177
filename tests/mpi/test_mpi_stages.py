"""The sharded stages under mpirun, with bad input and faults (docs/cluster.md §2, §3).

Merged outputs of label, estimate-sigma and certify (global, dual, multiscale) are identical
bit for bit for 1, 2 and 3 ranks; a rank killed with SIGKILL does not hang the job and a
re-run gives the same output; SIGUSR1 to one rank stops every rank with exit code 75,
publishing only complete shards, and a re-run completes the job; and each fault — world-size
mismatch, another config's shards, damaged shards, a second job on the folder, NaN logits —
is reported without losing finished work. Runs on a few dozen MNIST digits with small n.
"""
import glob
import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from dualrs_testlib import BIN, DATA, TEST_DATA, run, small_config, trained_checkpoint  # noqa: E402

MPIEXEC = os.environ.get("DUALRS_MPIEXEC", "mpirun")
SIGMAS = [0.25, 0.5, 1.0]
# Provenance that may differ between runs of the same config: times, host, world size.
VOLATILE_ATTRS = {"created_utc", "finished_utc", "world_size", "shard_world_sizes", "hostname", "slurm_job_id",
                  "merged_shards_sha256"}
_root = tempfile.mkdtemp(prefix="dualrs_mpi_")
_cache = {}


def mpi_env():
    env = dict(os.environ)
    env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1"})
    return env


def mpirun_args(np_, *args):
    return [MPIEXEC, "-np", str(np_), "--oversubscribe", BIN, *map(str, args)]


def mpirun(np_, *args, check=True, timeout=300):
    proc = subprocess.run(mpirun_args(np_, *args), capture_output=True, text=True, env=mpi_env(), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"mpirun -np {np_} dualrs {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def write_config(name, cfg):
    path = os.path.join(_root, name)
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def base_config():
    cfg = small_config()
    cfg["model"]["checkpoint"] = trained_checkpoint()
    cfg["dual"] = {"sigma_candidates": SIGMAS, "sigma_e": 1.0, "estimator": {"arch": "mnist_cnn"}}
    # batch_size 72 = 3 examples' copies per forward: groups of 3 within shards of 4
    # ([0, 3), [3, 4), ...), so the ranks' groups must not depend on who runs which shard.
    cfg["label"] = {"n": 24, "alpha": 0.01, "batch_size": 72, "seed": 2,
                    "selection": {"split": "train", "end": 30}, "shard_size": 4}
    cfg["estimate_sigma"] = {"n": 8, "batch_size": 24, "seed": 5, "selection": {"split": "train", "end": 24},
                             "shard_size": 4}
    cfg["certify"] = {"sigma": 0.5, "n0": 16, "n": 48, "alpha": 0.01, "batch_size": 48, "seed": 3,
                      "selection": {"split": "test", "end": 18}, "shard_size": 3}
    return cfg


def config_path():
    if "config" not in _cache:
        _cache["config"] = write_config("config.json", base_config())
    return _cache["config"]


def estimator_checkpoint():
    """A variance estimator trained for one epoch on the 1-rank labels (for the dual runs)."""
    if "estimator" not in _cache:
        out = os.path.join(_root, "estimator")
        run("train-estimator", "-c", config_path(), "-o", out, "-q",
            "--labels", os.path.join(stage_run("label", 1), "labels.h5"), "--epochs", "1")
        _cache["estimator"] = os.path.join(out, "estimator.pt")
    return _cache["estimator"]


def stage_args(stage):
    """(command, extra flags) of a stage under test."""
    if stage == "label":
        return "label", []
    if stage == "estimate-sigma":
        return "estimate-sigma", ["--estimator", estimator_checkpoint()]
    parts = stage.split("-")  # certify-<method>[-grid][-staged]
    method = parts[1]
    extra = ["--method", method]
    if method == "dual":
        extra += ["--estimator", estimator_checkpoint()]
    if "grid" in parts:
        extra += ["--noise", "grid"]
    if "staged" in parts:
        extra += ["--sampling", "staged"]
    return "certify", extra


def stage_run(stage, np_):
    """Runs `stage` once with np_ ranks into its own folder; returns the folder."""
    key = (stage, np_)
    if key not in _cache:
        command, extra = stage_args(stage)
        out = os.path.join(_root, f"{stage}-np{np_}")
        mpirun(np_, command, "-c", config_path(), "-o", out, "-q", "--expect-world-size", np_, *extra)
        _cache[key] = out
    return _cache[key]


def output_files(folder):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "*.h5")) +
                  glob.glob(os.path.join(folder, "*.tsv")))


class OutputsMixin:
    def assert_same_h5(self, a, b, ignore=()):
        """Every dataset bit for bit except timing; every attribute except VOLATILE_ATTRS."""
        with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
            self.assertEqual(sorted(fa.keys()), sorted(fb.keys()), f"{a} vs {b}")
            for name in fa.keys():
                if name == "time_s":
                    self.assertEqual(fa[name].shape, fb[name].shape)
                    continue
                self.assertEqual(fa[name].dtype, fb[name].dtype, name)
                self.assertTrue(np.array_equal(fa[name][()], fb[name][()]), f"dataset {name}: {a} vs {b}")
            self.assertEqual(set(fa.attrs.keys()), set(fb.attrs.keys()))
            for name in fa.attrs.keys():
                if name in VOLATILE_ATTRS or name in ignore:
                    continue
                self.assertTrue(np.array_equal(np.asarray(fa.attrs[name]), np.asarray(fb.attrs[name])),
                                f"attribute {name}: {fa.attrs[name]!r} vs {fb.attrs[name]!r}")

    def assert_same_tsv(self, a, b):
        """Cohen-style TSVs equal except the time column."""
        rows = []
        for path in (a, b):
            with open(path) as f:
                rows.append([line.rstrip("\n").split("\t")[:-1] for line in f])
        self.assertEqual(rows[0], rows[1])

    def assert_same_outputs(self, a, b, ignore=()):
        self.assertEqual(output_files(a), output_files(b))
        self.assertTrue(output_files(a))
        for name in output_files(a):
            if name.endswith(".h5"):
                self.assert_same_h5(os.path.join(a, name), os.path.join(b, name), ignore)
            else:
                self.assert_same_tsv(os.path.join(a, name), os.path.join(b, name))


class RankCountTest(OutputsMixin, unittest.TestCase):
    """Merged outputs do not depend on the number of ranks."""

    def check_stage(self, stage):
        one = stage_run(stage, 1)
        for np_ in (2, 3):
            self.assert_same_outputs(one, stage_run(stage, np_))
        with h5py.File(os.path.join(stage_run(stage, 3), output_files(one)[0]), "r") as f:
            self.assertEqual(f.attrs["world_size"], 3)
            self.assertEqual(f.attrs["shard_world_sizes"], "3")
            idx = f["idx"][()]
            self.assertTrue(np.all(np.diff(idx) > 0), "merged rows are sorted by example index")
        # Every rank wrote its own log, named by rank.
        self.assertEqual(sorted(os.listdir(os.path.join(stage_run(stage, 3), "logs"))),
                         ["rank-0000.log", "rank-0001.log", "rank-0002.log"])
        return one

    def test_label(self):
        one = self.check_stage("label")
        with h5py.File(os.path.join(one, "labels.h5"), "r") as f:
            self.assertEqual(f["radii"].shape, (30, 3))
            self.assertGreater(f["kept"][()].sum(), 0, "the trained model certifies some digits")
            self.assertEqual(f.attrs["merged_shards"], 8)

    def test_estimate_sigma(self):
        self.check_stage("estimate-sigma")

    def test_certify_global(self):
        one = self.check_stage("certify-global")
        with h5py.File(os.path.join(one, "certify.h5"), "r") as f:
            self.assertGreater((f["prediction"][()] >= 0).sum(), 0)

    def test_certify_dual(self):
        self.check_stage("certify-dual")

    def test_certify_multiscale(self):
        self.check_stage("certify-multiscale")

    def test_certify_dual_with_grid_noise_and_staged_sampling(self):
        one = self.check_stage("certify-dual-grid-staged")
        with h5py.File(os.path.join(one, "certify.h5"), "r") as f:
            self.assertEqual((f.attrs["noise"], f.attrs["sampling"]), ("grid", "staged"))

    def test_single_process_without_mpirun_gives_the_same_output(self):
        out = os.path.join(_root, "label-plain")
        run("label", "-c", config_path(), "-o", out, "-q")
        # Only the MPI library in library_versions tells them apart ("mpi none" here).
        self.assert_same_outputs(stage_run("label", 1), out, ignore={"library_versions"})


# ---- Preemption, crashes and faults: a longer labelling job -------------------------------

LONG_SHARDS = 16


def long_config_path():
    if "long" not in _cache:
        cfg = base_config()
        cfg["label"].update({"n": 64, "batch_size": 128, "shard_size": 2,
                             "selection": {"split": "train", "end": 2 * LONG_SHARDS}})
        _cache["long"] = write_config("long.json", cfg)
    return _cache["long"]


def long_reference():
    """The long job, uninterrupted, on 2 ranks."""
    if "long_ref" not in _cache:
        out = os.path.join(_root, "long-ref")
        mpirun(2, "label", "-c", long_config_path(), "-o", out, "-q")
        _cache["long_ref"] = out
    return _cache["long_ref"]


def wait_for(predicate, what, timeout=120):
    """Polls a condition (not a timing assumption: it fails only if the condition never holds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def shard_files(out):
    return sorted(glob.glob(os.path.join(out, "shards", "shard-*.h5")))


def process_gone(pid):
    """True when `pid` no longer runs (absent, or a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def rank_pid(out, rank):
    """The pid a rank logged in its first line ("... pid 1234; ...")."""
    path = os.path.join(out, "logs", f"rank-{rank:04d}.log")
    def first_line():
        if not os.path.exists(path):
            return ""
        with open(path) as f:
            return f.readline()

    wait_for(lambda: "pid" in first_line(), f"the log of rank {rank}")
    return int(first_line().split(" pid ")[1].split(";")[0])


class Job:
    """A dualrs job under mpirun in the background; ended in tearDown if the test fails."""

    def __init__(self, np_, *args):
        self.proc = subprocess.Popen(mpirun_args(np_, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=mpi_env())

    def finish(self, timeout=120):
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out + err

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # mpirun ends its ranks
            try:
                self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()


class PreemptionTest(OutputsMixin, unittest.TestCase):
    def setUp(self):
        self.jobs = []
        self.dir = tempfile.mkdtemp(prefix="job_", dir=_root)

    def tearDown(self):
        for job in self.jobs:
            job.stop()

    def start(self, np_, *args):
        job = Job(np_, *args)
        self.jobs.append(job)
        return job

    def test_sigusr1_to_one_rank_stops_every_rank_with_75_and_a_rerun_completes(self):
        out = os.path.join(self.dir, "out")
        job = self.start(3, "label", "-c", long_config_path(), "-o", out)
        wait_for(lambda: len(shard_files(out)) >= 1, "a first shard")
        os.kill(rank_pid(out, 1), signal.SIGUSR1)
        code, text = job.finish()
        self.assertEqual(code, 75, text)
        self.assertIn("stopped on request", text)
        self.assertFalse(os.path.exists(os.path.join(out, "labels.h5")), "nothing merged")
        self.assertEqual(glob.glob(os.path.join(out, "shards", "*.tmp")), [], "no partial shard published")
        done = shard_files(out)
        self.assertLess(len(done), LONG_SHARDS, "the job stopped early")
        for path in done:
            with h5py.File(path, "r") as f:
                self.assertEqual(f.attrs["shard_complete"], 1)
                self.assertEqual(len(f["idx"]), f.attrs["shard_end"] - f.attrs["shard_begin"])
        # Every rank stopped on request, not only the signalled one.
        for rank in range(3):
            with open(os.path.join(out, "logs", f"rank-{rank:04d}.log")) as f:
                self.assertIn("stopped on request", f.read(), f"rank {rank}")
        self.assertFalse(os.path.exists(os.path.join(out, "dualrs.lock")), "the lock is released")
        proc = mpirun(2, "label", "-c", long_config_path(), "-o", out)
        self.assertIn(f"resuming: {len(done)} of {LONG_SHARDS} shards already done", proc.stderr)
        self.assert_same_outputs(long_reference(), out)

    def test_sigkill_of_a_rank_ends_the_job_and_a_rerun_gives_the_same_output(self):
        out = os.path.join(self.dir, "out")
        job = self.start(3, "label", "-c", long_config_path(), "-o", out)
        wait_for(lambda: len(shard_files(out)) >= 1, "a first shard")
        os.kill(rank_pid(out, 2), signal.SIGKILL)
        code, text = job.finish(timeout=120)  # must not hang
        self.assertNotEqual(code, 0, text)
        self.assertFalse(os.path.exists(os.path.join(out, "labels.h5")))
        kept = len(shard_files(out))
        self.assertGreaterEqual(kept, 1)
        # mpirun may return before the ranks it killed have exited; the lock (held by rank 0)
        # is stale only once its process is gone.
        wait_for(lambda: process_gone(rank_pid(out, 0)), "rank 0 to exit")
        proc = mpirun(3, "label", "-c", long_config_path(), "-o", out)
        self.assertIn("resuming", proc.stderr)
        self.assert_same_outputs(long_reference(), out)

    def test_a_second_job_on_the_folder_is_refused_and_the_first_finishes(self):
        out = os.path.join(self.dir, "out")
        job = self.start(2, "label", "-c", long_config_path(), "-o", out, "-q")
        lock = os.path.join(out, "dualrs.lock")
        wait_for(lambda: os.path.exists(lock) and os.path.getsize(lock) > 0, "the lock file")
        with open(lock) as f:
            holder = json.load(f)
        # Freeze the holder so that the first job is certainly still running.
        os.kill(holder["pid"], signal.SIGSTOP)
        try:
            second = run("label", "-c", long_config_path(), "-o", out, check=False)
        finally:
            os.kill(holder["pid"], signal.SIGCONT)
        self.assertNotEqual(second.returncode, 0)
        self.assertIn("locked by another job", second.stderr)
        self.assertIn(f"pid {holder['pid']}", second.stderr)
        self.assertIn(f"host {holder['host']}", second.stderr)
        self.assertIn("Slurm job", second.stderr)
        self.assertEqual(len(second.stderr.strip().splitlines()), 1, second.stderr)
        code, text = job.finish()
        self.assertEqual(code, 0, text)
        self.assert_same_outputs(long_reference(), out)

    def test_a_stale_lock_of_a_dead_process_is_taken_over(self):
        out = os.path.join(self.dir, "out")
        shutil.copytree(long_reference(), out)
        dead = subprocess.Popen(["true"])
        dead.wait()
        with open(os.path.join(out, "dualrs.lock"), "w") as f:
            json.dump({"host": os.uname().nodename, "pid": dead.pid, "slurm_job_id": "", "command": "dualrs label",
                       "scope": "all", "since_utc": "2026-01-01T00:00:00Z"}, f)
        proc = run("label", "-c", long_config_path(), "-o", out)
        self.assertIn("took over the stale lock", proc.stderr)
        self.assertIn(f"process {dead.pid}", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "dualrs.lock")))


class FaultTest(OutputsMixin, unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fault_", dir=_root)

    def copy_of_label_run(self):
        """The 1-rank label output, copied (its shards are what a resumed run finds)."""
        out = os.path.join(self.dir, "label")
        shutil.copytree(stage_run("label", 1), out)
        return out

    def test_world_size_mismatch_is_refused_before_any_work(self):
        out = os.path.join(self.dir, "out")
        proc = mpirun(2, "label", "-c", config_path(), "-o", out, "--expect-world-size", "3", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("--expect-world-size", proc.stderr)
        self.assertIn("expected 3 ranks but this job has 2", proc.stderr)
        self.assertEqual(proc.stderr.count("expected 3 ranks"), 1, "reported once, by rank 0")
        self.assertFalse(os.path.exists(out))
        plain = run("label", "-c", config_path(), "-o", out, "--expect-world-size", "2", check=False)
        self.assertIn("expected 2 ranks but this job has 1", plain.stderr)

    def test_a_silent_singleton_is_refused(self):
        # A launcher that says "2 tasks" while MPI sees one rank.
        proc = run("label", "-c", config_path(), "-o", os.path.join(self.dir, "out"), check=False,
                   env={"SLURM_STEP_NUM_TASKS": "2", "OMPI_ALLOW_RUN_AS_ROOT": "1",
                        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"})
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("SLURM_STEP_NUM_TASKS=2", proc.stderr)
        self.assertIn("world of 1 rank", proc.stderr)

    def test_another_configs_shards_are_refused_and_left_alone(self):
        out = self.copy_of_label_run()
        before = {p: sha256(p) for p in shard_files(out)}
        proc = mpirun(2, "label", "-c", config_path(), "-o", out, "--n", "25", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("holds shards of another config", proc.stderr)
        self.assertIn(out, proc.stderr)
        with h5py.File(shard_files(out)[0], "r") as f:
            self.assertIn(f.attrs["config_sha256"], proc.stderr)
        self.assertEqual(proc.stderr.count("another config"), 1, proc.stderr)
        after = {p: sha256(p) for p in shard_files(out)}
        self.assertEqual(before, after)

    def test_damaged_shards_are_moved_aside_recomputed_and_never_merged(self):
        out = self.copy_of_label_run()
        os.remove(os.path.join(out, "labels.h5"))
        files = shard_files(out)
        # Truncated.
        with open(files[1], "r+b") as f:
            f.truncate(os.path.getsize(files[1]) // 2)
        # A flipped byte inside the radii chunk: the fletcher32 checksum fails.
        with h5py.File(files[2], "r") as f:
            chunk = f["radii"].id.get_chunk_info(0)
        with open(files[2], "r+b") as f:
            f.seek(chunk.byte_offset + 3)
            byte = f.read(1)
            f.seek(chunk.byte_offset + 3)
            f.write(bytes([byte[0] ^ 0x55]))
        # No completion mark.
        with h5py.File(files[3], "r+") as f:
            del f.attrs["shard_complete"]
        # `dualrs merge` refuses to merge them.
        merge = run("merge", out, check=False)
        self.assertNotEqual(merge.returncode, 0)
        self.assertIn("damaged", merge.stderr)
        proc = mpirun(2, "label", "-c", config_path(), "-o", out)
        for name in (files[1], files[2], files[3]):
            self.assertIn(f"damaged shard {name}", proc.stderr)
        self.assertIn("no completion mark", proc.stderr)
        self.assertEqual(len(glob.glob(os.path.join(out, "shards", "corrupt", "shard-*"))), 3)
        self.assertIn("resuming: 5 of 8 shards already done", proc.stderr)
        self.assert_same_outputs(stage_run("label", 1), out)

    def test_shard_subsets_are_merged_by_dualrs_merge(self):
        out = os.path.join(self.dir, "subsets")
        mpirun(1, "label", "-c", config_path(), "-o", out, "--shard-subset", "0/2", "-q")
        self.assertFalse(os.path.exists(os.path.join(out, "labels.h5")))
        early = run("merge", out, check=False)
        self.assertNotEqual(early.returncode, 0)
        self.assertIn("4 of 8 shards missing (1, 3, 5, 7)", early.stderr)
        mpirun(2, "label", "-c", config_path(), "-o", out, "--shard-subset", "1/2", "-q")
        merged = run("merge", out)
        self.assertIn("30 examples from 8 shards", merged.stderr)
        self.assert_same_outputs(stage_run("label", 1), out)
        with h5py.File(os.path.join(out, "labels.h5"), "r") as f:
            self.assertEqual(f.attrs["shard_world_sizes"], "1,2")

    def test_nan_logits_are_counted_reported_and_abstain(self):
        cfg = base_config()
        cfg["model"] = {"torchscript": os.path.join(TEST_DATA, "ts_nan_bright.pt"), "num_classes": 10}
        cfg["certify"].update({"sigma": 0.25, "selection": {"split": "test", "end": 30}, "shard_size": 5})
        path = write_config("nan.json", cfg)
        out = os.path.join(self.dir, "nan")
        proc = mpirun(2, "certify", "-c", path, "-o", out, "-q")
        with h5py.File(os.path.join(out, "certify.h5"), "r") as f:
            idx, non_finite = f["idx"][()], f["non_finite"][()]
            prediction, radius = f["prediction"][()], f["radius"][()]
        # The fixture returns NaN when the mean pixel of the noisy copy exceeds 0.14; the mean
        # of 784 pixels moves by sigma/28 = 0.009 under noise, so digits far from 0.14 are
        # all-NaN or NaN-free.
        with gzip.open(os.path.join(DATA, "images-idx3-ubyte.gz")) as f:
            raw = f.read()
        images = np.frombuffer(raw[16:], np.uint8).reshape(-1, 28, 28) / 255.0
        mean = images[idx].mean(axis=(1, 2))
        copies = cfg["certify"]["n0"] + cfg["certify"]["n"]
        self.assertTrue(np.all(non_finite[mean > 0.18] == copies))
        self.assertTrue(np.all(non_finite[mean < 0.10] == 0))
        affected = non_finite > 0
        self.assertGreater(affected.sum(), 3)
        self.assertLess(affected.sum(), 30)
        self.assertTrue(np.all(prediction[affected] == -1), "an example with NaN logits abstains")
        self.assertTrue(np.all(radius[affected] == 0))
        self.assertTrue(np.all(prediction[~affected] == 9), "the others are certified as the fixture's class 9")
        self.assertIn(f"{affected.sum()} of 30 examples had non-finite logits", proc.stderr)
        self.assertIn(f"in {non_finite.sum()} noisy copies", proc.stderr)


class WholeWorldTest(unittest.TestCase):
    """Commands that are not sharded run unchanged under mpirun: rank 0 does the work."""

    def test_root_only_commands_answer_once(self):
        proc = mpirun(3, "radius", "--count", "9900", "--n", "10000", "--sigma", "0.25")
        self.assertEqual(len(proc.stdout.strip().splitlines()), 1, proc.stdout)
        self.assertEqual(json.loads(proc.stdout)["abstain"], False)
        proc = mpirun(2, "label", "--help")
        self.assertEqual(proc.stdout.count("usage: dualrs label"), 1)
        self.assertIn("--expect-world-size", proc.stdout)
        self.assertIn("--shard-subset", proc.stdout)

    def test_a_job_runs_with_the_whole_world(self):
        cfg = small_config()
        cfg["train_base"].update({"epochs": 1, "selection": {"split": "train", "end": 300}})
        cfg["certify"].update({"shard_size": 3, "selection": {"split": "test", "end": 9}})
        cfg["table"] = {"radii": [0, 0.25], "convention": "inclusive"}
        cfg_path = write_config("job_config.json", cfg)
        job = {"name": "tiny", "config": os.path.basename(cfg_path), "stages": [
            {"name": "base", "command": "train-base"},
            {"name": "cert", "command": "certify", "set": {"model": {"checkpoint": "${out}/base/model.pt"}}},
            {"name": "table", "command": "table", "out": "${out}", "inputs": ["${out}/cert/certify.h5"]}]}
        job_path = write_config("job.json", job)
        out = os.path.join(_root, "job-np3")
        mpirun(3, "run", job_path, "--out", out, "-q")
        with open(os.path.join(out, "job_summary.json")) as f:
            summary = json.load(f)
        self.assertEqual(summary["world_size"], 3)
        self.assertEqual([s["name"] for s in summary["stages"]], ["base", "cert", "table"])
        self.assertTrue(os.path.exists(os.path.join(out, "certified_accuracy.csv")))
        self.assertEqual(len(os.listdir(os.path.join(out, "cert", "logs"))), 3)
        # Resumes like a single process: every stage is up to date.
        proc = mpirun(2, "run", job_path, "--out", out)
        self.assertEqual(proc.stderr.count("up to date, skipped"), 3, proc.stderr)


def tearDownModule():
    shutil.rmtree(_root, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
