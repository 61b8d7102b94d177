"""The cached ImageNet file index (docs/cluster.md §8b) on a generated tree.

`dualrs index-dataset` writes the index once; a stage that finds it fresh lists no folder; a
file added to a class folder makes it stale (detected from the folders' stamps, rebuilt, the
new file counted); a truncated or edited index is rebuilt; under mpirun with 2 ranks only one
process (rank 0) lists folders, and with a fresh index none does. Certified results are the
same with and without the index. Listings are observed through DUALRS_TRACE_LISTINGS=1.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from dualrs_testlib import BIN, TEST_DATA, TempDirTestCase, run  # noqa: E402

MPIEXEC = os.environ.get("DUALRS_MPIEXEC", "mpirun")
LISTING = re.compile(r"^dualrs\[pid (\d+)\]: listing (.*)$", re.M)
TRACE = {"DUALRS_TRACE_LISTINGS": "1"}


class BrightestChannel(torch.nn.Module):
    """Class = the brightest colour channel (3 classes)."""

    def forward(self, x):
        return x.mean(dim=(2, 3)) * 10.0


def listings(stderr):
    """(pid, folder) of every traced directory listing."""
    return LISTING.findall(stderr)


class DatasetIndexTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        torch.jit.script(BrightestChannel().eval()).save(self.path("model.pt"))
        self.root = self.path("imagenet")
        shutil.copytree(os.path.join(TEST_DATA, "imagenet_tiny"), self.root)
        self.config = self.write_config({"format": "imagenet_folder", "root": self.root,
                                         "synsets": os.path.join(self.root, "synsets.txt"),
                                         "val_labels": os.path.join(self.root, "val_labels.txt"),
                                         "resize": 20, "crop": 16})

    def write_config(self, dataset, name="config.json"):
        cfg = {"dataset": dataset, "model": {"torchscript": self.path("model.pt"), "num_classes": 3},
               "certify": {"sigma": 0.05, "n0": 20, "n": 100, "alpha": 0.001, "batch_size": 50, "seed": 5,
                           "selection": {"split": "val"}}}
        return self.write_json(name, cfg)

    def index_files(self, out):
        folder = os.path.join(out, "dataset_index")
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []

    def certify(self, out, config=None, check=True):
        return run("certify", "-c", config or self.config, "-o", out, check=check, env=TRACE)

    def tsv(self, out):
        """certify.tsv's rows without the timing column."""
        with open(os.path.join(out, "certify.tsv")) as f:
            rows = [line.rstrip("\n").split("\t") for line in f]
        keep = [i for i, name in enumerate(rows[0]) if name != "time"]
        return [[row[i] for i in keep] for row in rows]

    def test_index_dataset_then_a_stage_lists_nothing(self):
        out = self.path("out")
        built = run("index-dataset", "-c", self.config, "-o", out, env=TRACE)
        self.assertIn(": built, 9 files in 4 folders", built.stdout)
        self.assertTrue(listings(built.stderr))
        self.assertEqual(len(self.index_files(out)), 1)
        self.assertEqual(run("index-dataset", "-c", self.config, "-o", out, "--check").returncode, 0)
        again = run("index-dataset", "-c", self.config, "-o", out, env=TRACE)
        self.assertIn(": fresh, 9 files", again.stdout)
        self.assertEqual(listings(again.stderr), [])

        proc = self.certify(out)
        self.assertEqual(listings(proc.stderr), [])
        # The same results as a run that lists the tree itself (no index under its folder).
        plain = self.path("plain")
        scanned = self.certify(plain)
        self.assertTrue(listings(scanned.stderr))
        self.assertEqual(self.tsv(out), self.tsv(plain))

    def test_an_added_file_makes_the_index_stale(self):
        out = self.path("out")
        run("index-dataset", "-c", self.config, "-o", out)
        cls = os.path.join(self.root, "train", "n01484850")
        shutil.copy(os.path.join(cls, "n01484850_5.JPEG"), os.path.join(cls, "n01484850_6.JPEG"))
        check = run("index-dataset", "-c", self.config, "-o", out, "--check", check=False)
        self.assertEqual(check.returncode, 1)
        self.assertIn("stale", check.stdout)
        proc = self.certify(out)
        self.assertIn("was not used (stale", proc.stderr)
        self.assertTrue(listings(proc.stderr))
        fresh = run("index-dataset", "-c", self.config, "-o", out)
        self.assertIn(": fresh, 10 files", fresh.stdout)
        # A job stage counts the new file: train now has 6 examples after the 4 of val.
        path = os.path.join(out, "dataset_index", self.index_files(out)[0])
        with open(path) as f:
            header = json.loads(f.read().splitlines()[1])
        self.assertEqual((header["files"], header["val_count"]), (10, 4))

    def test_a_corrupt_index_is_rebuilt_and_named(self):
        out = self.path("out")
        run("index-dataset", "-c", self.config, "-o", out)
        path = os.path.join(out, "dataset_index", self.index_files(out)[0])
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("n01440764_10026.JPEG", "n01440764_99999.JPEG"))
        check = run("index-dataset", "-c", self.config, "-o", out, "--check", check=False)
        self.assertEqual(check.returncode, 1)
        self.assertIn("corrupt", check.stdout)
        proc = self.certify(out)
        self.assertIn(f"dataset index {path} was not used (corrupt", proc.stderr)
        with open(path) as f:
            rebuilt = f.read()
        self.assertEqual(rebuilt.splitlines()[2:], text.splitlines()[2:])  # the same files again
        self.assertEqual(run("index-dataset", "-c", self.config, "-o", out, "--check").returncode, 0)
        with open(path, "w") as f:
            f.write(text[: len(text) // 2])
        self.assertIn("corrupt", run("index-dataset", "-c", self.config, "-o", out, "--check", check=False).stdout)

    def test_class_folder_val_layout_and_a_new_class_folder_file(self):
        # val/<wnid>/ folders instead of a flat val/ with labels: each is stamped too.
        with open(os.path.join(self.root, "val_labels.txt")) as f:
            pairs = [line.split() for line in f if line.strip()]
        for name, wnid in pairs:
            os.makedirs(os.path.join(self.root, "val", wnid), exist_ok=True)
            os.rename(os.path.join(self.root, "val", name), os.path.join(self.root, "val", wnid, name))
        config = self.write_config({"format": "imagenet_folder", "root": self.root,
                                    "synsets": os.path.join(self.root, "synsets.txt"), "resize": 20, "crop": 16},
                                   "class_folders.json")
        out = self.path("out")
        self.assertIn(": built, 9 files in 6 folders", run("index-dataset", "-c", config, "-o", out).stdout)
        val = os.path.join(self.root, "val", "n01440764")
        shutil.copy(os.path.join(val, "ILSVRC2012_val_00000002.JPEG"), os.path.join(val, "ILSVRC2012_val_00000009.JPEG"))
        self.assertIn("stale", run("index-dataset", "-c", config, "-o", out, "--check", check=False).stdout)
        self.assertIn(": rebuilt, 10 files", run("index-dataset", "-c", config, "-o", out).stdout)

    def test_bad_input(self):
        mnist = self.write_json("mnist.json", {"dataset": {"format": "mnist_idx", "images": "x", "labels": "y"}})
        proc = run("index-dataset", "-c", mnist, "-o", self.path("out"), check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("/dataset/format", proc.stderr)
        shutil.rmtree(os.path.join(self.root, "train", "n01443537"))
        proc = run("index-dataset", "-c", self.config, "-o", self.path("out"), check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("missing class", proc.stderr)
        self.assertEqual(self.index_files(self.path("out")), [])

    @unittest.skipIf(shutil.which(MPIEXEC) is None, "mpirun not found")
    def test_ranks_above_zero_list_no_folder(self):
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
                   **TRACE)

        def mpirun(out):
            proc = subprocess.run([MPIEXEC, "-np", "2", "--oversubscribe", BIN, "certify", "-c", self.config, "-o", out,
                                   "--expect-world-size", "2"], capture_output=True, text=True, env=env, timeout=300)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            return proc

        first_out = self.path("out1")
        first = mpirun(first_out)  # no index yet: rank 0 builds it, alone
        pids = {pid for pid, _ in listings(first.stderr)}
        self.assertEqual(len(pids), 1, first.stderr)
        self.assertEqual(len(self.index_files(first_out)), 1)
        out = self.path("out2")  # a fresh certify folder next to the same index
        shutil.copytree(os.path.join(first_out, "dataset_index"), os.path.join(out, "dataset_index"))
        second = mpirun(out)  # fresh: nobody lists
        self.assertEqual(listings(second.stderr), [])
        cls = os.path.join(self.root, "train", "n01440764")
        os.remove(os.path.join(cls, "n01440764_10027.JPEG"))
        out = self.path("out3")
        shutil.copytree(os.path.join(first_out, "dataset_index"), os.path.join(out, "dataset_index"))
        third = mpirun(out)  # stale: rank 0 rebuilds, alone
        self.assertEqual(len({pid for pid, _ in listings(third.stderr)}), 1, third.stderr)
        self.assertIn("was not used (stale", third.stderr)
        plain = self.path("plain")
        run("certify", "-c", self.config, "-o", plain)
        self.assertEqual(self.tsv(out), self.tsv(plain))


if __name__ == "__main__":
    unittest.main()
