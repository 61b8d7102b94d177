"""Helpers for the integration tests: run the real executable, make small configs."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

BIN = os.environ.get("DUALRS_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "dualrs"))
SOURCE = os.environ.get("DUALRS_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
DATA = os.path.join(SOURCE, "data", "mnist")
TEST_DATA = os.path.join(SOURCE, "tests", "data")


def run(*args, check=True, env=None):
    """Runs dualrs with args; returns CompletedProcess (text)."""
    full_env = dict(os.environ)
    full_env.setdefault("OMP_NUM_THREADS", "1")
    full_env.setdefault("OPENBLAS_NUM_THREADS", "1")
    if env:
        full_env.update(env)
    proc = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"dualrs {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def read_json(path):
    """The JSON document in PATH (closing the file)."""
    with open(path) as f:
        return json.load(f)


def small_config(**sections):
    """The embedded-MNIST config with small, fast settings; sections override whole keys."""
    config = {
        "name": "integration",
        "dataset": {
            "name": "mnist", "format": "mnist_idx",
            "images": os.path.join(DATA, "images-idx3-ubyte.gz"),
            "labels": os.path.join(DATA, "labels-idx1-ubyte.gz"),
            "splits": {"train": os.path.join(DATA, "split", "train.txt"),
                       "test": os.path.join(DATA, "split", "test.txt")},
        },
        "model": {"arch": "mnist_cnn", "num_classes": 10},
        "train_base": {"epochs": 2, "batch_size": 64, "lr": 0.002, "sigma_candidates": [0.25, 0.5],
                       "seed": 1, "selection": {"split": "train", "end": 1500}},
        "certify": {"sigma": 0.25, "n0": 20, "n": 200, "alpha": 0.001, "batch_size": 100, "seed": 3,
                    "selection": {"split": "test", "begin": 0, "end": 12}},
    }
    config.update(sections)
    return config


class TempDirTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dualrs_it_")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def write_json(self, name, obj):
        path = self.path(name)
        with open(path, "w") as f:
            json.dump(obj, f)
        return path


_trained = {}


def trained_checkpoint():
    """Trains the small base model once per process and returns its checkpoint path."""
    if "path" not in _trained:
        out = tempfile.mkdtemp(prefix="dualrs_it_base_")
        cfg = os.path.join(out, "config.json")
        with open(cfg, "w") as f:
            json.dump(small_config(), f)
        run("train-base", "--config", cfg, "--out", out, "--quiet")
        _trained["path"] = os.path.join(out, "model.pt")
        _trained["config"] = cfg
    return _trained["path"]
