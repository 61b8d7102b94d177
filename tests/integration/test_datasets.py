"""CIFAR-10 binary and ImageNet folder datasets through the real executable: certification of
examples from files written here in exactly those formats, with a tiny TorchScript classifier
(made here with python3-torch); bad files give one error line naming the file."""
import csv
import os
import shutil
import unittest

import torch
from scipy import stats

from dualrs_testlib import TEST_DATA, TempDirTestCase, run

RECORD = 1 + 3 * 32 * 32


class BrightestChannel(torch.nn.Module):
    """logits[:, k] = 10 * mean of channel k for k < 3, 0 for the other classes."""

    def __init__(self, num_classes):
        super().__init__()
        self.extra = num_classes - 3

    def forward(self, x):
        means = x.mean(dim=(2, 3))
        return torch.cat([10.0 * means, torch.zeros(x.shape[0], self.extra)], dim=1)


def cifar_record(label, bright):
    """Label byte, then R, G and B planes of 32 x 32: channel `bright` at 255, the others 0."""
    planes = [bytes([255 if c == bright else 0]) * 1024 for c in range(3)]
    return bytes([label]) + b"".join(planes)


def write_cifar(root, test_labels, train_labels_per_batch):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "test_batch.bin"), "wb") as f:
        for label in test_labels:
            f.write(cifar_record(label, label % 3))
    for b in range(1, 6):
        with open(os.path.join(root, f"data_batch_{b}.bin"), "wb") as f:
            for label in train_labels_per_batch:
                f.write(cifar_record(label, label % 3))


def read_tsv(path):
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


class DatasetsTest(TempDirTestCase):
    def setUp(self):
        super().setUp()
        for k in (3, 10):
            torch.jit.script(BrightestChannel(k).eval()).save(self.path(f"brightest_channel_{k}.pt"))

    def certify(self, dataset, split, sigma=0.25, check=True, **selection):
        k = 3 if dataset["format"] == "imagenet_folder" else 10
        cfg = {
            "dataset": dataset,
            "model": {"torchscript": self.path(f"brightest_channel_{k}.pt"), "num_classes": k},
            "certify": {"sigma": sigma, "n0": 20, "n": 200, "alpha": 0.001, "batch_size": 110, "seed": 5,
                        "selection": {"split": split, **selection}},
        }
        path = self.write_json("config.json", cfg)
        return run("certify", "--config", path, "--out", self.path("out"), "--quiet", check=check)

    def test_cifar10_test_examples_are_certified(self):
        write_cifar(self.path("cifar"), [0, 1, 2, 0], [1, 2])
        self.certify({"format": "cifar10_bin", "root": self.path("cifar")}, "test")
        rows = read_tsv(self.path("out", "certify.tsv"))
        # Test examples are numbered first, in test_batch.bin order, as in Cohen et al.'s logs.
        self.assertEqual([int(r["idx"]) for r in rows], [0, 1, 2, 3])
        self.assertEqual([int(r["label"]) for r in rows], [0, 1, 2, 0])
        self.assertEqual([int(r["predict"]) for r in rows], [0, 1, 2, 0])
        # Every one of the n = 200 votes is right: p_a_lower = alpha^(1/n) (Clopper-Pearson).
        want = 0.25 * stats.norm.ppf(0.001 ** (1 / 200))
        for r in rows:
            self.assertAlmostEqual(float(r["radius"]), want, places=9)
            self.assertEqual(int(r["correct"]), 1)

    def test_cifar10_train_split_follows_the_test_examples(self):
        write_cifar(self.path("cifar"), [0, 1, 2], [2, 1])
        self.certify({"format": "cifar10_bin", "root": self.path("cifar")}, "train", begin=1, skip=4)
        rows = read_tsv(self.path("out", "certify.tsv"))
        # train positions 1, 5, 9 = data_batch_1 record 1, data_batch_3 record 1, data_batch_5 record 1.
        self.assertEqual([int(r["idx"]) for r in rows], [4, 8, 12])
        self.assertEqual([int(r["label"]) for r in rows], [1, 1, 1])

    def test_truncated_cifar10_file_is_named_with_its_record(self):
        write_cifar(self.path("cifar"), [0, 1], [1, 2])
        path = self.path("cifar", "data_batch_4.bin")
        with open(path, "r+b") as f:
            f.truncate(RECORD + 100)
        proc = self.certify({"format": "cifar10_bin", "root": self.path("cifar")}, "test", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("data_batch_4.bin", proc.stderr)
        self.assertIn("record 1 is truncated", proc.stderr)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertFalse(os.path.exists(self.path("out", "certify.h5")))

    def imagenet(self):
        root = self.path("imagenet")
        shutil.copytree(os.path.join(TEST_DATA, "imagenet_tiny"), root)
        return {"format": "imagenet_folder", "root": root, "synsets": os.path.join(root, "synsets.txt"),
                "val_labels": os.path.join(root, "val_labels.txt"), "resize": 20, "crop": 16}

    def test_imagenet_val_examples_are_certified(self):
        self.certify(self.imagenet(), "val", sigma=0.05)
        rows = read_tsv(self.path("out", "certify.tsv"))
        self.assertEqual([int(r["idx"]) for r in rows], [0, 1, 2, 3])
        self.assertEqual([int(r["label"]) for r in rows], [0, 1, 1, 2])  # (class, file name) order
        for r in rows:
            self.assertIn(int(r["predict"]), (-1, 0, 1, 2))

    def test_corrupt_jpeg_is_named(self):
        dataset = self.imagenet()
        bad = os.path.join(dataset["root"], "val", "ILSVRC2012_val_00000003.JPEG")
        with open(bad, "r+b") as f:
            f.truncate(200)
        proc = self.certify(dataset, "val", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("ILSVRC2012_val_00000003.JPEG", proc.stderr)
        self.assertNotIn("terminate called", proc.stderr)

    def test_missing_class_folder_is_named(self):
        dataset = self.imagenet()
        shutil.rmtree(os.path.join(dataset["root"], "train", "n01443537"))
        proc = self.certify(dataset, "val", check=False)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("missing class", proc.stderr)
        self.assertIn("n01443537", proc.stderr)


if __name__ == "__main__":
    unittest.main()
