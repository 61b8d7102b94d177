"""`dualrs radius` against the SciPy/statsmodels reference table (tests/data/stats_radius.csv)."""
import csv
import json
import math
import os
import unittest

from dualrs_testlib import TEST_DATA, run


class RadiusCliTest(unittest.TestCase):
    def test_matches_reference_rows(self):
        with open(os.path.join(TEST_DATA, "stats_radius.csv")) as f:
            rows = list(csv.DictReader(f))
        # Every 10th row (the table has several hundred) keeps the test quick.
        for row in rows[::10]:
            out = run("radius", "--count", row["n_a"], "--n", row["n"], "--sigma", row["sigma"],
                      "--alpha", row["alpha"])
            got = json.loads(out.stdout)
            want_radius = float(row["radius"])
            sigma = float(row["sigma"])
            self.assertEqual(got["abstain"], row["abstain"] == "1", row)
            self.assertTrue(math.isclose(got["p_a_lower"], float(row["p_a_lower"]), rel_tol=1e-9, abs_tol=0), row)
            self.assertLessEqual(abs(got["radius"] - want_radius), 1e-9 * max(abs(want_radius), sigma), row)

    def test_9900_of_10000(self):
        got = json.loads(run("radius", "--count", 9900, "--n", 10000, "--sigma", 0.25, "--alpha", 0.001).stdout)
        self.assertEqual(set(got), {"count", "n", "sigma", "alpha", "p_a_lower", "radius", "abstain"})
        self.assertFalse(got["abstain"])
        self.assertAlmostEqual(got["radius"], 0.25 * 2.2124, places=3)

    def test_a_bound_that_rounds_to_one_gets_a_finite_conservative_radius(self):
        # The true bound is 1 - 1.1e-22, which rounds to 1.0 in double; the rounding-safe bound
        # (8 ulps lower, docs/method.md section 15) is below it, so the radius is finite and sound.
        got = json.loads(run("radius", "--count", 2**53, "--n", 2**53, "--sigma", 0.25, "--alpha", 0.999999).stdout)
        self.assertLess(got["p_a_lower"], 1.0)
        self.assertGreater(got["p_a_lower"], 1.0 - 1e-14)
        self.assertTrue(math.isfinite(got["radius"]))
        self.assertFalse(got["abstain"])

    def test_bad_arguments_exit_nonzero_naming_the_flag(self):
        for args, flag in [(["--count", 5, "--n", 10, "--sigma", 0, "--alpha", 0.001], "--sigma"),
                           (["--count", 5, "--n", 10, "--sigma", 0.5, "--alpha", 1.5], "--alpha"),
                           (["--count", 5, "--n", 10, "--sigma", 0.5, "--alpha", 0], "--alpha"),
                           (["--count", 11, "--n", 10, "--sigma", 0.5], "--count"),
                           (["--count", 0, "--n", 0, "--sigma", 0.5], "--n")]:
            proc = run("radius", *args, check=False)
            self.assertNotEqual(proc.returncode, 0, args)
            self.assertIn(flag, proc.stderr, args)
            self.assertEqual(proc.stdout, "")

    def test_help(self):
        out = run("radius", "--help").stdout
        self.assertIn("--alpha", out)
        self.assertIn("example", out)


if __name__ == "__main__":
    unittest.main()
