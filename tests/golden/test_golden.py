"""Golden identity test: two small jobs must give the results recorded in expected_digests.json,
bit for bit (tests/golden/README.md says when and how to regenerate them).

    python3 -m unittest -v test_golden            # compare (what ctest runs)
    python3 test_golden.py --regenerate           # rewrite expected_digests.json (deliberate)

Both need DUALRS_BIN (default: build/dualrs of this checkout).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import golden  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("DUALRS_BIN", os.path.join(HERE, "..", "..", "build", "dualrs"))
EXPECTED = os.path.join(HERE, "expected_digests.json")
JOBS = ("dual_job.json", "variants_job.json")


def run_job(job, out_dir):
    """Runs one golden job with one thread per process (the digests assume it)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", DUALRS_NUM_THREADS="1")
    proc = subprocess.run([BIN, "run", os.path.join(HERE, job), "--out", out_dir, "--quiet"],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"dualrs run {job} failed ({proc.returncode}):\n{proc.stderr}")
    return golden.digest_tree(out_dir)


def compute_all(tmp):
    return {job: run_job(job, os.path.join(tmp, os.path.splitext(job)[0])) for job in JOBS}


class GoldenIdentityTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dualrs_golden_")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_results_match_the_expected_digests(self):
        with open(EXPECTED) as f:
            environments = json.load(f)["environments"]
        environment = golden.compute_environment()
        if environment not in environments:
            self.skipTest(f"golden: skipped: the digests were made on {', '.join(sorted(environments))}, this machine "
                          f"is {environment} (float kernels differ); regenerate them here to guard this machine")
        expected = environments[environment]
        actual = compute_all(self.tmp)
        problems = []
        for job in JOBS:
            problems += [f"{job}: {line}" for line in golden.compare(expected[job], actual[job])]
        self.assertFalse(problems, "results differ from tests/golden/expected_digests.json:\n  " + "\n  ".join(problems))
        # The digests must cover the results that matter: certificates, labels, tables, weights.
        for job, must in (("dual_job.json", ["certify_dual_rs/certify.h5", "label/labels.h5",
                                             "estimate_sigma/sigma_estimates.h5", "certified_accuracy.csv",
                                             "train_estimator/estimator.pt", "finetune/model.pt",
                                             "predict_dual/predict.h5"]),
                          ("variants_job.json", ["certify_dual_rs_routing/certify.h5", "train_denoiser/denoiser.pt",
                                                 "certify_dds_global_sigma_0.5/certify.h5"])):
            for rel in must:
                self.assertIn(rel, actual[job], f"{job}: {rel} not digested")

    def test_a_changed_result_is_reported(self):
        # The comparison itself must see a one-bit change in a dataset and a removed file.
        expected = {"a.h5": {"radius": "1", "idx": "2"}, "t.csv": "3"}
        self.assertEqual(golden.compare(expected, {"a.h5": {"radius": "9", "idx": "2"}}),
                         ["changed: a.h5 radius", "missing output: t.csv"])
        self.assertEqual(golden.compare(expected, expected), [])


def regenerate():
    """Rewrites this environment's digests; those of other environments are kept."""
    environment = golden.compute_environment()
    tmp = tempfile.mkdtemp(prefix="dualrs_golden_")
    try:
        jobs = compute_all(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    doc = {"environments": {}}
    if os.path.exists(EXPECTED):
        with open(EXPECTED) as f:
            doc = json.load(f)
    doc["environments"][environment] = jobs
    with open(EXPECTED, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {EXPECTED} ({sum(len(v) for v in jobs.values())} outputs, environment {environment}; "
          f"kept {', '.join(sorted(set(doc['environments']) - {environment})) or 'no other'})")


if __name__ == "__main__":
    if "--regenerate" in sys.argv:
        regenerate()
    else:
        unittest.main()
