"""The reliability suite: bad jobs, bounds and faults, as tables of cases where they share a
shape, and as tests of their own where a case needs a set-up (a full tmpfs, planted links,
a running process to stop).

Table cases are (name, the dualrs command or how to make it, the expected exit code, the
message fragments stderr must hold); the job cases also hash the output folder before and
after, so a case proves nothing already written is lost. Also here: a full disk is a clean
error (exit 1, never a crash), a finished folder is not rewritten, temporary files never
follow links planted at their names, outputs get 0666 & ~umask, and hostile folder names
reach the plot script and the Slurm scripts as data. The full-disk tests mount a small tmpfs
and skip where that is not allowed (not root). The earlier bad-input cases stay in
test_bad_input.py."""
import copy
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import time
import unittest

from dualrs_testlib import BIN, SOURCE, TEST_DATA, TempDirTestCase, run, small_config, trained_checkpoint


def tree_digest(path):
    """SHA-256 over every file's relative path and bytes under `path` ("" when absent)."""
    if not os.path.exists(path):
        return ""
    h = hashlib.sha256()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            h.update(os.path.relpath(full, path).encode() + b"\0")
            with open(full, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def certify_job(*stages, config="config.json"):
    return {"name": "reliability", "config": config, "stages": list(stages)}


CKPT = {"model": {"checkpoint": "${out}/base/model.pt"}}
BASE = {"name": "base", "command": "train-base"}


def cert(name, sigma=0.25, **extra):
    stage = {"name": name, "command": "certify", "set": {**copy.deepcopy(CKPT), "certify": {"sigma": sigma}}}
    stage.update(extra)
    return stage


# (name, job manifest, extra args, exit code, stderr fragments). Every job is checked by
# `dualrs validate`, `dualrs run --dry-run` and `dualrs run`, none of which may write anything.
JOB_CASES = [
    ("two stages write one folder",
     certify_job(BASE, cert("a", out="${out}/same"), cert("b", 0.5, out="${out}/same")),
     2, ["/stages/2/out", "stage 'a' (/stages/1)", "certify.h5"]),
    ("a stage at ${out} writes what another stage there writes",
     certify_job(BASE, cert("a", out="${out}"), cert("b", 0.5, out="${out}")),
     2, ["/stages/2/out", "both would write certify.h5"]),
    ("duplicate stage names",
     certify_job(BASE, cert("a"), cert("a", 0.5)),
     2, ["/stages/2/name", "'a' is also the name of stage 'a' (/stages/1)"]),
    ("an unknown variable",
     certify_job(BASE, {"name": "a", "command": "certify", "set": {"model": {"checkpoint": "${outdir}/base/model.pt"}}}),
     2, ["/stages/1/set/model/checkpoint", "unknown variable '${outdir}'"]),
    ("an unterminated variable",
     certify_job(BASE, {"name": "a", "command": "certify", "set": {"model": {"checkpoint": "${out/base/model.pt"}}}),
     2, ["/stages/1/set/model/checkpoint", "malformed variable"]),
    ("a variable without braces",
     certify_job(BASE, {"name": "a", "command": "certify", "set": {"model": {"checkpoint": "$out/base/model.pt"}}}),
     2, ["/stages/1/set/model/checkpoint", "malformed variable"]),
    ("a stage out outside --out",
     certify_job(BASE, cert("a", out="@ELSEWHERE@")),
     2, ["/stages/1/out", "outside the job's output folder", "allow_out_outside"]),
    ("a stage reads what only a later stage writes",
     certify_job(cert("a"), BASE),
     2, ["/stages/0/set/model/checkpoint", "which only stage 'base' (/stages/1) writes, later in the job"]),
    ("a table reads a later certify",
     certify_job(BASE, {"name": "table", "command": "table", "out": "${out}", "inputs": ["${out}/a/certify.h5"]}, cert("a")),
     2, ["/stages/1/inputs/0", "stage 'a' (/stages/2)"]),
]


# (name, dualrs arguments, exit code, stderr fragments): commands that need no files.
BIG = str(2**63 - 1)
COMMAND_CASES = [
    ("radius: an infinite sigma", ["radius", "--count", "990", "--n", "1000", "--sigma", "inf"], 2,
     ["--sigma", "must be finite and > 0, got inf"]),
    ("radius: a NaN sigma", ["radius", "--count", "990", "--n", "1000", "--sigma", "nan"], 2, ["--sigma", "got nan"]),
    ("radius: counts beyond 2^53", ["radius", "--count", BIG, "--n", BIG, "--sigma", "0.25"], 2,
     ["--n", "must be <= 2^53"]),
    ("table: a radius grid of 10^9 values", ["table", "none.h5", "-o", "/nonexistent/out", "--radii", "0:1:1e-9"], 2,
     ["--radii", "makes more than 10000 values"]),
    ("table: a negative radius", ["table", "none.h5", "-o", "/nonexistent/out", "--radii", "-1,0"], 2,
     ["--radii", "radii are distances, >= 0"]),
]


class CommandTest(unittest.TestCase):
    def test_bad_values_get_one_clear_error(self):
        for name, args, code, needles in COMMAND_CASES:
            with self.subTest(case=name):
                proc = run(*args, check=False)
                self.assertEqual(proc.returncode, code, proc.stderr)
                for needle in needles:
                    self.assertIn(needle, proc.stderr)
                self.assertNotIn("unexpected error", proc.stderr)
                self.assertEqual(proc.stdout, "")


def deep_job(tmp, depth=50000):
    path = os.path.join(tmp, "deep.json")
    with open(path, "w") as f:
        f.write('{"name": "deep", "config": "c.json", "stages": [{"name": "a", "command": "certify", "set": ')
        f.write('{"a": ' * depth + "1" + "}" * depth + "}]}")
    return ["validate", path]


def huge_config(tmp):
    path = os.path.join(tmp, "huge.json")
    with open(path, "w") as f:
        f.write('{"name": "' + "x" * (50 << 20) + '"}')
    return ["validate", path]


def written(tmp, name, text):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# (name, make the arguments in a temporary folder, exit code, stderr fragments).
FILE_CASES = [
    ("a folder given as the config", lambda tmp: ["validate", tmp], 1, ["is a directory, not a JSON file"]),
    ("a config with a duplicate key",
     lambda tmp: ["validate", written(tmp, "dup.json", '{"certify": {"sigma": 0.25, "n": 100, "sigma": 0.5}}')], 2,
     ["/certify/sigma", "duplicate key 'sigma'", "the value 0.5 would silently replace the earlier one"]),
    ("a job nested 50,000 levels deep", deep_job, 2, ["nested more than 64 levels deep"]),
    ("a 50 MB config", huge_config, 2, ["is 50 MiB", "at most 16 MiB"]),
    ("a model given as both TorchScript and a checkpoint",
     lambda tmp: ["validate", written(tmp, "both.json", json.dumps(dict(
         small_config(), model={"torchscript": "m.pt", "checkpoint": "w.pt", "num_classes": 10})))], 2,
     ["/model: give either 'checkpoint' (native weights) or 'torchscript', not both"]),
    ("an estimator given as both TorchScript and a checkpoint",
     lambda tmp: ["validate", written(tmp, "both_e.json", json.dumps(dict(
         small_config(), dual={"sigma_candidates": [0.25, 0.5], "sigma_e": 0.5,
                               "estimator": {"torchscript": "e.pt", "checkpoint": "w.pt"}})))], 2,
     ["/dual/estimator: give either"]),
    ("a wrong type names the expected one",
     lambda tmp: ["validate", written(tmp, "type.json", '{"certify": {"n": "ten thousand"}}')], 2,
     ["/certify/n: expected an integer, got a string"]),
]


class FileTest(TempDirTestCase):
    def test_bad_files_get_one_clear_error(self):
        for name, make, code, needles in FILE_CASES:
            with self.subTest(case=name):
                proc = run(*make(self.tmp), check=False)
                self.assertEqual(proc.returncode, code, proc.stderr[-2000:])
                for needle in needles:
                    self.assertIn(needle, proc.stderr)
                self.assertNotIn("unexpected error", proc.stderr)

    def test_a_checkpoint_flag_replaces_a_torchscript_config_and_says_so(self):
        cfg = small_config()
        cfg["model"] = {"torchscript": TS_MODEL, "num_classes": 10}
        cfg["certify"]["selection"] = {"split": "test", "end": 2}
        path = self.write_json("ts.json", cfg)
        proc = run("certify", "-c", path, "-o", self.path("out"), "--checkpoint", trained_checkpoint(), check=False)
        self.assertIn("note: --checkpoint replaces /model/torchscript of " + path, proc.stderr)
        # With the native checkpoint the config needs /model/arch: an error naming it, not TorchScript used.
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("/model", proc.stderr)
        cfg["model"]["arch"] = "mnist_cnn"
        path = self.write_json("ts2.json", cfg)
        proc = run("certify", "-c", path, "-o", self.path("out2"), "--checkpoint", trained_checkpoint(), check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("note: --checkpoint replaces /model/torchscript", proc.stderr)

    def test_an_empty_selection_is_an_error(self):
        cfg = small_config()
        cfg["model"]["checkpoint"] = trained_checkpoint()
        cfg["certify"]["selection"] = {"split": "test", "begin": 5, "end": 5}
        out = self.path("out")
        proc = run("certify", "-c", self.write_json("c.json", cfg), "-o", out, check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("/certify/selection: selects no examples", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "certify.h5")))


class JobManifestTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        cfg = small_config()
        cfg["table"] = {"radii": [0, 0.25, 0.5], "convention": "both"}
        self.write_json("config.json", cfg)

    def test_bad_jobs_are_refused_before_anything_runs(self):
        out = self.path("run")
        os.makedirs(out)
        with open(os.path.join(out, "keep.txt"), "w") as f:
            f.write("results of an earlier run\n")
        before = tree_digest(out)
        elsewhere = self.path("elsewhere")  # outside --out
        for name, job, code, needles in JOB_CASES:
            path = self.write_json("job.json", json.loads(json.dumps(job).replace("@ELSEWHERE@", elsewhere)))
            for args in (["validate", path], ["run", path, "--out", out, "--dry-run"], ["run", path, "--out", out]):
                with self.subTest(case=name, command=args[0] + (" --dry-run" if "--dry-run" in args else "")):
                    proc = run(*args, check=False)
                    self.assertEqual(proc.returncode, code, proc.stderr)
                    for needle in needles:
                        self.assertIn(needle, proc.stderr)
                    self.assertEqual(tree_digest(out), before, "the output folder changed")
        self.assertFalse(os.path.exists(elsewhere))

    def test_allowed_layouts_still_plan(self):
        # Stages that write different files may share a folder (table and analyze at ${out});
        # allow_out_outside lets a stage write elsewhere on purpose.
        elsewhere = self.path("elsewhere")
        job = certify_job(BASE, cert("a"), cert("b", 0.5, out=elsewhere, allow_out_outside=True),
                          {"name": "table", "command": "table", "out": "${out}", "inputs": ["${out}/a/certify.h5"]},
                          {"name": "analyze", "command": "analyze", "out": "${out}", "inputs": ["${out}/a/certify.h5"]})
        path = self.write_json("job.json", job)
        proc = run("run", path, "--out", self.path("run"), "--dry-run", check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("b (certify)", proc.stdout)


class BoundsTest(TempDirTestCase):
    def config(self, **certify):
        cfg = small_config()
        cfg["model"]["checkpoint"] = trained_checkpoint()
        cfg["certify"].update(certify)
        return self.write_json("config.json", cfg)

    def test_a_plan_over_the_ceiling_is_refused_unless_allowed(self):
        path = self.config(n0=10, n=100)
        out = self.path("out")
        # 12 examples x 110 forward passes = 1,320 > 1,000.
        proc = run("certify", "-c", path, "-o", out, "--max-forwards", "1000", check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("1,320 model forward passes, more than the ceiling of 1,000", proc.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "certify.h5")))
        proc = run("certify", "-c", path, "-o", out, "--max-forwards", "1000", "--allow-huge")
        self.assertIn("certify: plan: classifier: 12 examples x (n0 10 + n 100) = 1,320 forwards", proc.stderr)
        self.assertTrue(os.path.exists(os.path.join(out, "certify.h5")))
        # The default ceiling (10^12) refuses n = 10^12 at once, before loading anything heavy.
        proc = run("certify", "-c", path, "-o", self.path("huge"), "--n", str(10**12), check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("more than the ceiling of 1,000,000,000,000", proc.stderr)
        # A job is checked whole before its first stage runs; --dry-run marks the stage.
        job = self.write_json("job.json", {"name": "huge", "config": "config.json", "stages": [
            {"name": "cheap", "command": "certify"},
            {"name": "huge", "command": "certify", "set": {"certify": {"n": 10**12}}}]})
        proc = run("run", job, "--out", self.path("job"), check=False)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("/stages/1", proc.stderr)
        self.assertFalse(os.path.exists(self.path("job", "cheap", "certify.h5")))
        self.assertIn("refused unless --allow-huge", run("run", job, "--out", self.path("job"), "--dry-run").stdout)

    def test_out_of_range_flags_are_refused_before_anything_runs(self):
        path = self.config()
        out = self.path("out")
        for name, args, needles in (
                ("an infinite sigma", ["--sigma", "inf"], ["--sigma: must be a finite number, got inf"]),
                ("a NaN alpha", ["--alpha", "nan"], ["--alpha: must be a finite number, got nan"]),
                ("n beyond 2^53", ["--n", str(2**63 - 1)], ["/certify/n"]),
                ("n0 beyond 2^53", ["--n0", str(2**62)], ["/certify/n0"])):
            with self.subTest(case=name):
                proc = run("certify", "-c", path, "-o", out, *args, check=False)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                for needle in needles:
                    self.assertIn(needle, proc.stderr)
                self.assertFalse(os.path.exists(out), "nothing may be written")

    def test_a_batch_larger_than_its_copies_is_capped(self):
        # Today's bug: --batch-size 10^9 allocated 10^9 images (3 TB for MNIST) before the first forward.
        path = self.config(n0=10, n=50, batch_size=10**9)
        proc = run("certify", "-c", path, "-o", self.path("out"), "--end", "2", check=False)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        small = run("certify", "-c", self.config(n0=10, n=50, batch_size=7), "-o", self.path("small"), "--end", "2")
        self.assertEqual(small.returncode, 0)
        with open(self.path("out", "certify.tsv")) as a, open(self.path("small", "certify.tsv")) as b:
            strip = lambda rows: [r.split("\t")[:5] for r in rows]  # the time column differs
            self.assertEqual(strip(a.readlines()), strip(b.readlines()))


class StopTest(TempDirTestCase):
    """A stop request ends a stage between two batches, even inside one huge example."""

    def start_huge_certify(self):
        cfg = small_config()
        cfg["model"]["checkpoint"] = trained_checkpoint()
        cfg["certify"].update(n0=10, n=10**9, batch_size=100, shard_size=1)
        path = self.write_json("config.json", cfg)
        out = self.path("out")
        env = dict(os.environ, OMP_NUM_THREADS="1")
        proc = subprocess.Popen([BIN, "certify", "-c", path, "-o", out, "--allow-huge"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        # Wait until the rank log says the shards are being computed (the model is loaded).
        log = os.path.join(out, "logs", "rank-0000.log")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if os.path.exists(log):
                with open(log) as f:
                    if "shards to do" in f.read():
                        break
            time.sleep(0.05)
        self.assertIsNone(proc.poll(), "certify ended before it could be stopped")
        return proc, out

    def check_stopped(self, proc, out, name):
        try:
            _, err = proc.communicate(timeout=60)  # n = 10^9 copies would take hours
        except subprocess.TimeoutExpired:
            proc.kill()
            self.fail(f"{name} did not stop the example within 60 s")
        self.assertEqual(proc.returncode, 75, err)
        self.assertIn(f"stopped on request ({name})", err)
        self.assertEqual(len([l for l in err.splitlines() if "stopped on request" in l]), 1, err)
        self.assertFalse(os.path.exists(os.path.join(out, "dualrs.lock")), "the lock was not released")
        with open(os.path.join(out, "logs", "rank-0000.log")) as f:
            self.assertIn("inside an example, between two batches", f.read())

    def test_sigterm_stops_inside_an_example(self):
        proc, out = self.start_huge_certify()
        proc.send_signal(signal.SIGTERM)
        self.check_stopped(proc, out, "SIGTERM")

    def test_sigint_and_sighup_stop_and_release_the_lock(self):
        for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGHUP, "SIGHUP")):
            with self.subTest(signal=name):
                proc, out = self.start_huge_certify()
                proc.send_signal(sig)
                self.check_stopped(proc, out, name)
                shutil.rmtree(out)


TS_MODEL = os.path.join(TEST_DATA, "ts_mean_scaled.pt")
HOSTILE = "-x; $(touch pwned)\n"


def certify_config(end=8):
    """A quick certification of a TorchScript fixture: no training, a few seconds."""
    return small_config(model={"torchscript": TS_MODEL, "num_classes": 10},
                        certify={"sigma": 0.25, "n0": 10, "n": 40, "alpha": 0.001, "batch_size": 40, "seed": 3,
                                 "selection": {"split": "test", "begin": 0, "end": end}})


def snapshot(path):
    """(inode, mtime in ns, SHA-256) of a file: a rewrite changes at least the first two."""
    st = os.stat(path)
    with open(path, "rb") as f:
        return st.st_ino, st.st_mtime_ns, hashlib.sha256(f.read()).hexdigest()


def leftovers(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder)
                  for f in files if f.endswith(".tmp") or f.endswith(".lock"))


class FullDiskTest(TempDirTestCase):
    """A 4 MiB tmpfs, filled up to a few KiB: room for a lock file and a log line, not for
    an HDF5 file."""

    def setUp(self):
        super().setUp()
        self.disk = self.path("disk")
        os.mkdir(self.disk)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", self.disk],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}); needs root")
        self.config = self.write_json("config.json", certify_config())

    def tearDown(self):
        subprocess.run(["umount", self.disk], capture_output=True)
        super().tearDown()

    def fill(self, leave):
        """Fills the tmpfs until `leave` bytes are free."""
        st = os.statvfs(self.disk)
        with open(os.path.join(self.disk, "filler"), "ab") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))

    def certify(self, out, check=False):
        return run("certify", "--config", self.config, "--out", out, "--quiet", check=check)

    def assert_clean_failure(self, proc, out):
        self.assertEqual(proc.returncode, 1, f"expected a clean error (exit 1), got {proc.returncode}:\n{proc.stderr}")
        self.assertIn("No space left on device", proc.stderr)
        self.assertNotIn("HDF5: file write failed", proc.stderr)  # the system's reason, not HDF5's dump
        self.assertEqual(leftovers(out), [], "temporary files or the lock were left behind")

    def test_a_full_disk_while_writing_a_shard_is_a_clean_error(self):
        self.fill(24 * 1024)
        out = os.path.join(self.disk, "run")
        proc = self.certify(out)
        self.assert_clean_failure(proc, out)
        self.assertFalse(os.path.exists(os.path.join(out, "certify.h5")))
        self.assertEqual(os.listdir(os.path.join(out, "shards")), [])

    def test_a_full_disk_while_writing_the_merged_file_is_a_clean_error(self):
        out = os.path.join(self.disk, "run")
        self.certify(out, check=True)
        for name in ("certify.h5", "certify.tsv"):
            os.remove(os.path.join(out, name))
        self.fill(8 * 1024)
        proc = self.certify(out)  # nothing to compute: only the merge writes
        self.assert_clean_failure(proc, out)
        self.assertFalse(os.path.exists(os.path.join(out, "certify.h5")))
        os.remove(os.path.join(self.disk, "filler"))
        self.certify(out, check=True)  # and once there is room, the same command finishes
        self.assertTrue(os.path.isfile(os.path.join(out, "certify.h5")))

    def test_a_no_op_rerun_of_a_finished_folder_rewrites_nothing(self):
        out = os.path.join(self.disk, "run")
        self.certify(out, check=True)
        outputs = [os.path.join(out, name) for name in ("certify.h5", "certify.tsv")]
        before = [snapshot(p) for p in outputs]
        self.fill(8 * 1024)
        proc = self.certify(out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        merge = run("merge", out, check=False)
        self.assertEqual(merge.returncode, 0, merge.stderr)
        self.assertIn("not rewritten", merge.stdout + merge.stderr)
        self.assertEqual([snapshot(p) for p in outputs], before)
        self.assertEqual(leftovers(out), [])


class TemporaryFilesTest(TempDirTestCase):
    def plant(self, folder, names):
        """A link at each temporary name, pointing at a file of its own; returns the targets."""
        os.makedirs(folder, exist_ok=True)
        targets = {}
        for name in names:
            target = self.path("victim-" + name.replace("/", "_"))
            with open(target, "w") as f:
                f.write("precious\n")
            os.makedirs(os.path.dirname(os.path.join(folder, name)), exist_ok=True)
            os.symlink(target, os.path.join(folder, name))
            targets[name] = target
        return targets

    def assert_untouched(self, targets):
        for name, target in targets.items():
            with open(target) as f:
                self.assertEqual(f.read(), "precious\n", f"{name} was written through its link")

    def test_planted_links_at_result_temporary_names_are_not_followed(self):
        out = self.path("run")
        targets = self.plant(out, ["certify.h5.tmp", "certify.tsv.tmp", "shards/shard-00000.h5.tmp"])
        run("certify", "--config", self.write_json("config.json", certify_config()), "--out", out, "--quiet")
        self.assert_untouched(targets)
        for name in ("certify.h5", "certify.tsv", "shards/shard-00000.h5"):
            path = os.path.join(out, name)
            self.assertFalse(os.path.islink(path), f"{name} is a link")
            self.assertTrue(os.path.isfile(path), name)
        self.assertEqual(leftovers(out), [])

    def test_planted_links_at_checkpoint_temporary_names_are_not_followed(self):
        out = self.path("base")
        targets = self.plant(out, ["model.pt.tmp", "model.json.tmp", "train_log.csv.tmp"])
        cfg = certify_config()
        cfg["model"] = {"arch": "mnist_cnn", "num_classes": 10}
        cfg["train_base"] = {"epochs": 1, "batch_size": 64, "lr": 0.002, "sigma_candidates": [0.25], "seed": 1,
                             "selection": {"split": "train", "end": 128}}
        run("train-base", "--config", self.write_json("train.json", cfg), "--out", out, "--quiet")
        self.assert_untouched(targets)
        for name in ("model.pt", "model.json", "train_log.csv"):
            self.assertFalse(os.path.islink(os.path.join(out, name)), f"{name} is a link")
            self.assertTrue(os.path.isfile(os.path.join(out, name)), name)

    def test_outputs_get_0666_masked_by_the_umask(self):
        config = self.write_json("config.json", certify_config(end=4))
        for umask, mode in ((0o000, 0o666), (0o027, 0o640)):
            out = self.path(f"run-{umask:03o}")
            proc = subprocess.run([BIN, "certify", "--config", config, "--out", out, "--quiet"], capture_output=True,
                                  text=True, preexec_fn=lambda u=umask: os.umask(u))
            self.assertEqual(proc.returncode, 0, proc.stderr)
            for name in ("certify.h5", "certify.tsv", "shards/shard-00000.h5"):
                got = stat.S_IMODE(os.stat(os.path.join(out, name)).st_mode)
                self.assertEqual(got, mode, f"{name} with umask {umask:03o}: mode {got:03o}, expected {mode:03o}")


class HostileNamesTest(TempDirTestCase):
    def test_plot_passes_a_hostile_folder_name_to_its_script_as_data(self):
        # A run folder whose name reads as an option, a command and a line break.
        work = self.path("work")
        os.mkdir(work)
        source = self.path("src")
        run("certify", "--config", self.write_json("config.json", certify_config(end=4)), "--out", source, "--quiet")
        # The second has no space, so an option parser would take it for an option.
        names = [HOSTILE, "-q;$(touch_pwned)"]
        for name in names:
            os.makedirs(os.path.join(work, name, "cert"))
            for file in ("certify.h5", "certify.tsv"):
                shutil.copy(os.path.join(source, file), os.path.join(work, name, "cert", file))
        proc = subprocess.run([BIN, "plot", "--formats", "png", "--quiet", "--", *names], cwd=work,
                              capture_output=True, text=True,
                              env=dict(os.environ, DUALRS_ANALYSIS_DIR=os.path.join(SOURCE, "analysis")))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(sorted(os.listdir(work)), sorted(names), "a name was run as a command")
        with open(os.path.join(work, HOSTILE, "figures", "figures.json")) as f:
            index = json.load(f)
        self.assertTrue(index["figures"], index)


if __name__ == "__main__":
    unittest.main()
