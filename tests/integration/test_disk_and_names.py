"""Outputs under adverse conditions: a full disk is a clean error (exit 1, never a crash), a
finished folder is not rewritten, temporary files never follow links planted at their names,
outputs get 0666 & ~umask, and hostile folder names reach the plot script as data.

The full-disk tests mount a small tmpfs and skip where that is not allowed (not root)."""
import hashlib
import json
import os
import shutil
import stat
import subprocess
import unittest

from dualrs_testlib import BIN, DATA, SOURCE, TEST_DATA, TempDirTestCase, run

TS_MODEL = os.path.join(TEST_DATA, "ts_mean_scaled.pt")
HOSTILE = "-x; $(touch pwned)\n"


def certify_config(end=8):
    """A quick certification of a TorchScript fixture: no training, a few seconds."""
    return {
        "name": "disk",
        "dataset": {
            "name": "mnist", "format": "mnist_idx",
            "images": os.path.join(DATA, "images-idx3-ubyte.gz"),
            "labels": os.path.join(DATA, "labels-idx1-ubyte.gz"),
            "splits": {"train": os.path.join(DATA, "split", "train.txt"),
                       "test": os.path.join(DATA, "split", "test.txt")},
        },
        "model": {"torchscript": TS_MODEL, "num_classes": 10},
        "certify": {"sigma": 0.25, "n0": 10, "n": 40, "alpha": 0.001, "batch_size": 40, "seed": 3,
                    "selection": {"split": "test", "begin": 0, "end": end}},
    }


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
