"""Reports of a real (small) run: the tables equal an independent recomputation in Python, the
figures exist with sidecars that match the run's methods, and the readers of analysis/ read the
results, labels and shards. One small Dual RS job (train-base, labels, estimator, global sigma,
Multiscale, Dual RS, the Dual RS classifier at every sigma on Dual RS's own copies, table, analyze,
plot) runs once for the whole suite."""
import csv
import glob
import json
import os
import shutil
import sys
import tempfile
import unittest

import h5py
import numpy as np

from dualrs_testlib import SOURCE, TempDirTestCase, run, small_config

sys.path.insert(0, os.path.join(SOURCE, "analysis"))
import dualrs_h5  # noqa: E402

SIGMAS = [0.25, 0.5, 1.0]
RADII = [0.0, 0.25, 0.5, 0.75, 1.0]
_run = {}


def run_dir():
    """Runs the small job once per process; returns its output folder."""
    if not _run:
        root = tempfile.mkdtemp(prefix="dualrs_it_reports_")
        cfg = small_config()
        cfg["dual"] = {"sigma_candidates": SIGMAS, "sigma_e": 1.0, "estimator": {"arch": "mnist_cnn"}}
        cfg["label"] = {"n": 30, "alpha": 0.001, "batch_size": 30, "seed": 2,
                        "selection": {"split": "train", "end": 120}}
        cfg["train_estimator"] = {"epochs": 1, "batch_size": 32, "lr": 0.001, "lambda": 5.0}
        cfg["certify"].update({"n0": 20, "n": 100, "selection": {"split": "test", "end": 16}})
        cfg["table"] = {"radii": RADII, "convention": "both"}
        cfg["plot"] = {"convention": "inclusive", "formats": ["png", "pdf"]}
        with open(os.path.join(root, "config.json"), "w") as f:
            json.dump(cfg, f)
        ckpt = {"model": {"checkpoint": "${out}/base/model.pt"}}
        estimator = {"dual": {"estimator": {"arch": "mnist_cnn", "checkpoint": "${out}/est/estimator.pt"}}}
        certify = [f"${{out}}/cert_{s}/certify.h5" for s in SIGMAS]
        stages = [{"name": "base", "command": "train-base"},
                  {"name": "label", "command": "label", "set": ckpt},
                  {"name": "est", "command": "train-estimator",
                   "set": {"train_estimator": {"labels": "${out}/label/labels.h5"}}}]
        stages += [{"name": f"cert_{s}", "command": "certify",
                    "set": {**ckpt, "certify": {"method": "global", "sigma": s}}} for s in SIGMAS]
        # The Dual RS classifier (here the base model) at every sigma on Dual RS's own copies.
        per_sigma = [f"${{out}}/pcert_{s}/certify.h5" for s in SIGMAS]
        stages += [{"name": f"pcert_{s}", "command": "certify",
                    "set": {**ckpt, "certify": {"method": "global", "sigma": s, "streams": "dual_rs_classifier"}}}
                   for s in SIGMAS]
        stages += [{"name": "ms", "command": "certify", "set": {**ckpt, "certify": {"method": "multiscale"}}},
                   {"name": "dual", "command": "certify", "set": {**ckpt, **estimator, "certify": {"method": "dual"}}},
                   {"name": "table", "command": "table", "out": "${out}",
                    "inputs": certify + ["${out}/ms/certify.h5", "${out}/dual/certify.h5"]},
                   {"name": "analyze", "command": "analyze", "out": "${out}",
                    "inputs": certify + per_sigma + ["${out}/dual/certify.h5"]},
                   {"name": "plot", "command": "plot", "inputs": ["${out}"], "out": "${out}/figures"}]
        # A two-row ablation: a second estimator with hard-label CE and no consistency term.
        stages += [{"name": "abl_est", "command": "train-estimator",
                    "set": {"train_estimator": {"labels": "${out}/label/labels.h5", "loss": "ce", "lambda": 0.0,
                                                "eta": 0.0}}},
                   {"name": "abl_dual", "command": "certify",
                    "set": {**ckpt, "dual": {"estimator": {"arch": "mnist_cnn",
                                                           "checkpoint": "${out}/abl_est/estimator.pt"}},
                            "certify": {"method": "dual", "method_name": "dual_rs_ce"}}},
                   {"name": "ablation", "command": "analyze", "out": "${out}/ablation",
                    "inputs": per_sigma + ["${out}/dual/certify.h5", "${out}/abl_dual/certify.h5"]}]
        job = os.path.join(root, "job.json")
        with open(job, "w") as f:
            json.dump({"name": "reports", "config": "config.json", "stages": stages}, f)
        _run["dir"] = os.path.join(root, "run")
        run("run", job, "--out", _run["dir"], "--quiet")
    return _run["dir"]


def tearDownModule():
    if _run:
        shutil.rmtree(os.path.dirname(_run["dir"]), ignore_errors=True)


def read_text(path):
    with open(path) as f:
        return f.read()


def load_json(path):
    with open(path) as f:
        return json.load(f)


def result_files():
    """The methods' results (the table rows), without the per-sigma diagnostics."""
    return sorted(p for p in glob.glob(os.path.join(run_dir(), "*", "certify.h5"))
                  if not os.path.basename(os.path.dirname(p)).startswith(("pcert_", "abl_")))


def per_sigma_files():
    return [os.path.join(run_dir(), f"pcert_{s}", "certify.h5") for s in SIGMAS]


def read_h5(path):
    with h5py.File(path, "r") as f:
        return {name: f[name][:] for name in f.keys()}, dict(f.attrs)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def recompute(path, radius, convention):
    """Certified accuracy straight from the HDF5 datasets (h5py + numpy only)."""
    with h5py.File(path, "r") as f:
        prediction, label, r = f["prediction"][:], f["label"][:], f["radius"][:]
    ok = (prediction >= 0) & (prediction == label)
    hit = ok & ((r > radius) if convention == "strict" else (r >= radius))
    return int(np.count_nonzero(hit)), len(r)


def method_of(path):
    with h5py.File(path, "r") as f:
        return f.attrs["method"]


class TablesTest(unittest.TestCase):
    def test_tidy_table_equals_independent_recomputation(self):
        rows = read_csv(os.path.join(run_dir(), "certified_accuracy.csv"))
        self.assertEqual(list(rows[0]), ["method", "radius", "convention", "certified_accuracy", "num_certified",
                                         "num_examples"])
        files = {method_of(p): p for p in result_files()}
        self.assertEqual(set(files), {"global_sigma_0.25", "global_sigma_0.5", "global_sigma_1.0", "multiscale",
                                      "dual_rs"})
        self.assertEqual(len(rows), len(files) * len(RADII) * 2)
        for row in rows:
            hits, n = recompute(files[row["method"]], float(row["radius"]), row["convention"])
            self.assertEqual(int(row["num_certified"]), hits, row)
            self.assertEqual(int(row["num_examples"]), n, row)
            self.assertEqual(float(row["certified_accuracy"]), hits / n, row)  # exactly
        # The reader's own recomputation agrees too.
        ours = dualrs_h5.certified_accuracy_rows([files[m] for m in files], RADII)
        theirs = {(r["method"], float(r["radius"]), r["convention"]): r for r in rows}
        for r in ours:
            row = theirs[(r["method"], r["radius"], r["convention"])]
            self.assertEqual(r["certified_accuracy"], float(row["certified_accuracy"]))
            self.assertEqual(r["num_certified"], int(row["num_certified"]))

    def test_wide_tables_equal_recomputation_and_mark_the_best(self):
        files = {method_of(p): p for p in result_files()}
        wide = read_csv(os.path.join(run_dir(), "certified_accuracy_wide.csv"))
        self.assertEqual(len(wide), 2 * len(files))
        for convention in ("inclusive", "strict"):
            rows = [r for r in wide if r["convention"] == convention]
            for r in rows:
                for t in RADII:
                    hits, n = recompute(files[r["method"]], t, convention)
                    self.assertEqual(float(r[f"r_{t!r}"]), hits / n, (r["method"], t))
                with h5py.File(files[r["method"]], "r") as f:
                    ok = (f["prediction"][:] >= 0) & (f["prediction"][:] == f["label"][:])
                    acr = float(np.where(ok, f["radius"][:], 0).sum() / len(ok))
                    abstain = float(np.count_nonzero(f["prediction"][:] < 0) / len(ok))
                    self.assertEqual(int(r["n0"]), int(f.attrs["n0"]))
                    self.assertEqual(int(r["n"]), int(f.attrs["n"]))
                self.assertAlmostEqual(float(r["acr"]), acr, places=12)
                self.assertEqual(float(r["abstain_rate"]), abstain)
            # best: every row holding a column's maximum (when it is > 0).
            for column in [f"r_{t!r}" for t in RADII] + ["clean_accuracy", "acr"]:
                values = [float(r[column]) for r in rows]
                for r in rows:
                    expected = max(values) > 0 and float(r[column]) == max(values)
                    self.assertEqual(column in r["best"].split(), expected, (convention, column, r["method"]))
        markdown = read_text(os.path.join(run_dir(), "certified_accuracy.md"))
        self.assertIn("inclusive convention (radius ≥ r", markdown)
        self.assertIn("strict convention (radius > r", markdown)
        self.assertIn("16 examples of mnist (test split); n0 = 20, n = 100, α = 0.001.", markdown)
        self.assertIn("dual_rs: σ_e = 1.0, α_e = 0.0005, α_c = 0.0005.", markdown)
        # Bold cells in Markdown are exactly the CSV's best columns.
        tables = markdown.split("\n\n")
        for convention, block in zip(("inclusive", "strict"), [t for t in tables if t.startswith("| method")]):
            for line in block.splitlines()[2:]:
                cells = [c.strip() for c in line.strip("|").split("|")]
                row = next(r for r in wide if r["convention"] == convention and r["method"] == cells[0])
                columns = [f"r_{t!r}" for t in RADII] + ["clean_accuracy", "abstain_rate", "acr"]
                bold = {c for c, v in zip(columns, cells[2:]) if v.startswith("**")}
                self.assertEqual(bold, set(row["best"].split()), line)
        latex = read_text(os.path.join(run_dir(), "certified_accuracy.tex"))
        self.assertEqual(latex.count("\\toprule"), 2)
        self.assertEqual(latex.count("\\bottomrule"), 2)
        self.assertIn("dual\\_rs & \\{0.25, 0.5, 1.0\\}", latex)

    def test_table_command_options(self):
        files = result_files()
        with tempfile.TemporaryDirectory() as out:
            proc = run("table", *files, "--out", out, "--radii", "imagenet", "--convention", "strict")
            self.assertIn("| method | σ or Σ | 0.0 | 0.5 | 1.0 | 1.5 | 2.0 | clean | abstain | ACR |", proc.stdout)
            rows = read_csv(os.path.join(out, "certified_accuracy.csv"))
            self.assertEqual({float(r["radius"]) for r in rows}, {0.0, 0.5, 1.0, 1.5, 2.0})
            self.assertEqual({r["convention"] for r in rows}, {"strict"})
            # The same file twice: rows named after their folders.
            twice = os.path.join(out, "copy", "cert_0.5")
            os.makedirs(twice)
            shutil.copy(files[1], twice)
            proc = run("table", files[1], os.path.join(twice, "certify.h5"), "--out", out, "--radii", "0,1")
            self.assertIn("global_sigma_0.5 [", proc.stdout)
            self.assertEqual(len({r["method"] for r in read_csv(os.path.join(out, "certified_accuracy.csv"))}), 2)
            for args, needle in [(["--names", "a,b"], "--names"), (["--convention", "loose"], "--convention"),
                                 (["--radii", "1,0.5"], "--radii"), (["--radii", "cifar"], "--radii")]:
                proc = run("table", *files, "--out", out, *args, check=False)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(needle, proc.stderr)


class FiguresTest(unittest.TestCase):
    def figures(self):
        return os.path.join(run_dir(), "figures")

    def sidecar(self, name):
        return load_json(os.path.join(self.figures(), f"{name}.json"))

    def test_every_figure_exists_as_png_and_pdf(self):
        index = load_json(os.path.join(self.figures(), "figures.json"))
        self.assertEqual([f["name"] for f in index["figures"]],
                         ["certified_accuracy_vs_radius", "delta_radius_ecdf", "sigma_choice_confusion",
                          "optimal_sigma_distribution", "dual_rs_diagnosis"])
        self.assertEqual(index["skipped"], [])
        for fig in index["figures"]:
            for ext, magic in (("png", b"\x89PNG\r\n\x1a\n"), ("pdf", b"%PDF")):
                path = os.path.join(self.figures(), f"{fig['name']}.{ext}")
                with open(path, "rb") as f:
                    data = f.read()
                self.assertTrue(data.startswith(magic), path)
                self.assertGreater(len(data), 5000, path)
            side = self.sidecar(fig["name"])
            self.assertEqual(side["files"], {"png": f"{fig['name']}.png", "pdf": f"{fig['name']}.pdf"})
            self.assertTrue(side["series"], fig["name"])

    def test_accuracy_curves_match_the_methods_and_the_table(self):
        side = self.sidecar("certified_accuracy_vs_radius")
        methods = {method_of(p) for p in result_files()}
        self.assertEqual({s["method"] for s in side["series"]}, methods)
        self.assertEqual(len(side["series"]), len(methods))
        table = {(r["method"], float(r["radius"])): float(r["certified_accuracy"])
                 for r in read_csv(os.path.join(run_dir(), "certified_accuracy.csv")) if r["convention"] == "inclusive"}
        for s in side["series"]:
            x, y = s["x"], s["y"]
            self.assertEqual(x, sorted(x))
            for t in RADII:  # inclusive: y at the first x >= t, 0 beyond the last
                at = next((y[k] for k in range(len(x)) if x[k] >= t), 0.0)
                self.assertEqual(at, table[(s["method"], t)], (s["method"], t))

    def test_sigma_figures_match_the_cpp_analyses(self):
        ecdf = self.sidecar("delta_radius_ecdf")
        self.assertEqual({(s["method"], s["panel"]) for s in ecdf["series"]},
                         {("dual_rs", "delta_r_c"), ("dual_rs", "delta_r_sigma")})
        summary = {r["quantity"]: r for r in read_csv(os.path.join(run_dir(), "delta_radius_summary.csv"))}
        for s in ecdf["series"]:
            self.assertEqual(s["count"], int(summary[s["panel"]]["count"]))
            self.assertEqual(s["y"][-1] if s["y"] else 1.0, 1.0)
            if s["x"]:
                self.assertAlmostEqual(s["x"][0], float(summary[s["panel"]]["min"]), places=12)
                self.assertAlmostEqual(s["x"][-1], float(summary[s["panel"]]["max"]), places=12)
        confusion = self.sidecar("sigma_choice_confusion")
        self.assertEqual([s["method"] for s in confusion["series"]], ["dual_rs"])
        theirs = read_csv(os.path.join(run_dir(), "sigma_choice_confusion.csv"))
        counts = confusion["series"][0]["counts"]
        self.assertEqual(confusion["series"][0]["rows"], ["0.25", "0.5", "1.0", "none"])
        self.assertEqual(counts, [[int(v) for k, v in row.items() if k != "optimal_sigma"] for row in theirs])
        self.assertEqual(sum(map(sum, counts)), 16)
        dist = self.sidecar("optimal_sigma_distribution")
        self.assertEqual([s["kind"] for s in dist["series"]], ["optimal", "chosen", "labels"])
        ours = {r["sigma"]: r for r in read_csv(os.path.join(run_dir(), "optimal_sigma_distribution.csv"))}
        for k, category in enumerate(dist["categories"]):
            self.assertEqual(dist["series"][0]["counts"][k], int(ours[category]["optimal_count"]))
            self.assertEqual(dist["series"][1]["counts"][k], int(ours[category]["chosen_count"]))
        with h5py.File(os.path.join(run_dir(), "label", "labels.h5"), "r") as f:
            best = f["best"][:]
        self.assertEqual(dist["series"][2]["counts"], [int(np.count_nonzero(best == i)) for i in range(3)]
                         + [int(np.count_nonzero(best < 0))])

    def test_per_sigma_runs_redraw_dual_rs_copies_so_delta_r_c_is_never_negative(self):
        dual, dual_attrs = read_h5(os.path.join(run_dir(), "dual", "certify.h5"))
        runs = [read_h5(p) for p in per_sigma_files()]
        for (data, attrs), s in zip(runs, SIGMAS):
            self.assertEqual(attrs["streams"], "dual_rs_classifier")
            self.assertEqual(attrs["method"], f"dual_rs_classifier_sigma_{s}")
            self.assertEqual(float(attrs["alpha"]), float(dual_attrs["alpha_c"]))
        chosen = dual["sigma_index"]
        self.assertGreater(np.count_nonzero(chosen >= 0), 0)
        for e in np.flatnonzero(chosen >= 0):  # bit for bit: the very copies Dual RS drew
            at = runs[chosen[e]][0]
            np.testing.assert_array_equal(at["counts"][e], dual["counts"][e])
            np.testing.assert_array_equal(at["counts_selection"][e], dual["counts_selection"][e])
            ok = dual["prediction"][e] >= 0
            self.assertEqual(at["radius"][e] if ok else 0.0, dual["r_c"][e] if ok else 0.0)
        correct = [np.where((d["prediction"] >= 0) & (d["prediction"] == d["label"]), d["radius"], 0.0) for d, _ in runs]
        r_c_star = np.max(np.stack(correct, axis=1), axis=1)
        dual_ok = (dual["prediction"] >= 0) & (dual["prediction"] == dual["label"])
        delta = (r_c_star - np.where(dual_ok, dual["r_c"], 0.0))[chosen >= 0]
        self.assertGreaterEqual(delta.min(), 0.0)
        summary = {r["quantity"]: r for r in read_csv(os.path.join(run_dir(), "delta_radius_summary.csv"))}
        row = summary["delta_r_c"]
        self.assertEqual(row["reference"], "dual_rs_classifier")
        self.assertEqual(int(row["same_counts"]), 16)
        self.assertEqual(int(row["count"]), len(delta))
        self.assertEqual(float(row["fraction_negative"]), 0.0)
        self.assertAlmostEqual(float(row["min"]), float(delta.min()), places=12)
        self.assertAlmostEqual(float(row["max"]), float(delta.max()), places=12)

    def test_diagnosis_equals_independent_recomputation(self):
        dual, _ = read_h5(os.path.join(run_dir(), "dual", "certify.h5"))
        runs = [read_h5(p)[0] for p in per_sigma_files()]
        correct = [np.where((d["prediction"] >= 0) & (d["prediction"] == d["label"]), d["radius"], 0.0) for d in runs]
        oracle = np.max(np.stack(correct, axis=1), axis=1)
        ok = (dual["prediction"] >= 0) & (dual["prediction"] == dual["label"])
        chose = dual["sigma_index"] >= 0
        r_sigma = np.where(chose, dual["r_sigma"], 0.0)
        r_c = np.where(ok, dual["r_c"], 0.0)
        radius = np.where(ok, dual["radius"], 0.0)
        rows = read_csv(os.path.join(run_dir(), "dual_rs_diagnosis.csv"))
        self.assertEqual(len(rows), 2 * len(RADII))
        n = len(radius)
        for row in rows:
            t = float(row["radius"])

            def reaches(v):
                return (v > 0) & ((v > t) if row["convention"] == "strict" else (v >= t))
            certified = reaches(radius)
            rest = ~certified & chose
            expect = {"dual_rs": certified, "oracle": reaches(oracle), "estimator_abstained": ~certified & ~chose,
                      "lost_to_r_sigma": rest & ~reaches(r_sigma) & reaches(r_c),
                      "lost_to_r_c": rest & reaches(r_sigma) & ~reaches(r_c),
                      "lost_to_both": rest & ~reaches(r_sigma) & ~reaches(r_c)}
            for key, mask in expect.items():
                self.assertEqual(float(row[key]), np.count_nonzero(mask) / n, (key, row))
        # Dual RS's column is the table's.
        table = {(r["method"], r["radius"], r["convention"]): float(r["certified_accuracy"])
                 for r in read_csv(os.path.join(run_dir(), "certified_accuracy.csv"))}
        for row in rows:
            self.assertEqual(float(row["dual_rs"]), table[("dual_rs", row["radius"], row["convention"])])
        # The figure's series (inclusive, exact step points) give the same shares at the table radii.
        side = self.sidecar("dual_rs_diagnosis")
        self.assertEqual(len(side["series"]), 1)
        s = side["series"][0]
        self.assertEqual(s["reference"], "dual_rs_classifier")
        for row in (r for r in rows if r["convention"] == "inclusive"):
            t = float(row["radius"])
            k = next((k for k in range(len(s["x"])) if s["x"][k] >= t), None)
            if k is None:  # beyond every radius: nothing certified
                self.assertEqual((float(row["dual_rs"]), float(row["oracle"])), (0.0, 0.0))
                continue
            for key in ("dual_rs", "oracle", "estimator_abstained", "lost_to_r_sigma", "lost_to_r_c", "lost_to_both"):
                self.assertEqual(s[key][k], float(row[key]), (key, t))

    def test_ablation_table_equals_independent_recomputation(self):
        runs = [read_h5(p)[0] for p in per_sigma_files()]
        correct = [np.where((d["prediction"] >= 0) & (d["prediction"] == d["label"]), d["radius"], 0.0) for d in runs]
        stacked = np.stack(correct, axis=1)
        best = stacked.max(axis=1)
        optimal = np.where(best > 0, stacked.argmax(axis=1), -1)
        rows = read_csv(os.path.join(run_dir(), "ablation", "ablation_table.csv"))
        self.assertEqual([(r["method"], r["convention"]) for r in rows],
                         [("dual_rs", "inclusive"), ("dual_rs_ce", "inclusive"), ("dual_rs", "strict"),
                          ("dual_rs_ce", "strict")])
        for row in rows:
            folder = "dual" if row["method"] == "dual_rs" else "abl_dual"
            d, _ = read_h5(os.path.join(run_dir(), folder, "certify.h5"))
            ok = (d["prediction"] >= 0) & (d["prediction"] == d["label"])
            for t in RADII:
                hit = ok & ((d["radius"] > t) if row["convention"] == "strict" else (d["radius"] >= t))
                self.assertEqual(float(row[str(t)]), np.count_nonzero(hit) / len(hit), (row["method"], t))
            self.assertAlmostEqual(float(row["acr"]), float(np.mean(np.where(ok, d["radius"], 0.0))), places=12)
            has = optimal >= 0
            self.assertAlmostEqual(float(row["sigma_selection_accuracy"]),
                                   np.count_nonzero(d["sigma_index"][has] == optimal[has]) / max(1, np.count_nonzero(has)),
                                   places=12)
            certified = d["prediction"] >= 0
            if np.count_nonzero(certified):
                self.assertAlmostEqual(float(row["bound_by_r_sigma"]),
                                       np.count_nonzero((d["r_sigma"] - d["r_c"])[certified] < 0)
                                       / np.count_nonzero(certified), places=12)
            self.assertAlmostEqual(float(row["oracle_acr"]), float(best.mean()), places=12)
            self.assertEqual(row["reference"], "dual_rs_classifier")
        with open(os.path.join(run_dir(), "ablation", "ablation_table.md")) as f:
            md = f.read()
        self.assertIn("| dual_rs_ce |", md)
        self.assertEqual(md.count("| variant |"), 2)  # one table per convention

    def test_plot_command_redraws_and_reports_missing_python(self):
        with tempfile.TemporaryDirectory() as out:
            proc = run("plot", run_dir(), "--out", out, "--convention", "strict", "--formats", "svg")
            self.assertIn("certified_accuracy_vs_radius", proc.stdout)
            self.assertTrue(os.path.getsize(os.path.join(out, "certified_accuracy_vs_radius.svg")) > 5000)
            self.assertEqual(load_json(os.path.join(out, "certified_accuracy_vs_radius.json"))["convention"],
                             "strict")
            fake = os.path.join(out, "python-without-matplotlib")
            with open(fake, "w") as f:
                f.write("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'matplotlib'\" >&2\nexit 1\n")
            os.chmod(fake, 0o755)
            for env, needles in [({"DUALRS_PYTHON": fake}, ["No module named 'matplotlib'", "python3-matplotlib",
                                                            "DUALRS_PYTHON"]),
                                 ({"DUALRS_PYTHON": os.path.join(out, "absent")}, ["absent", "python3-matplotlib"]),
                                 ({"DUALRS_ANALYSIS_DIR": out}, ["DUALRS_ANALYSIS_DIR", "dualrs_plots.py"])]:
                proc = run("plot", run_dir(), "--out", os.path.join(out, "x"), env=env, check=False)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
                for needle in needles:
                    self.assertIn(needle, proc.stderr)
            empty = os.path.join(out, "empty")
            os.makedirs(empty)
            proc = run("plot", empty, check=False)
            self.assertNotEqual(proc.returncode, 0)
            self.assertIn("no certification results", proc.stderr)
            self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)


class ReadersTest(TempDirTestCase):
    def test_results_labels_frames_and_provenance(self):
        dual = os.path.join(run_dir(), "dual")
        data, attrs = dualrs_h5.read(dual)  # a stage folder
        self.assertEqual(attrs["schema"], "dualrs.certify")
        self.assertEqual(attrs["sigma_candidates"], SIGMAS)
        self.assertEqual(attrs["config"]["certify"]["n"], 100)
        self.assertEqual(dualrs_h5.method_kind(attrs), "dual")
        self.assertEqual(data["counts"].shape, (16, 10))
        frame, prov = dualrs_h5.frame(os.path.join(dual, "certify.h5"))
        self.assertEqual(len(frame), 16)
        self.assertIn("counts_9", frame.columns)
        self.assertEqual(list(frame["radius"]), list(data["radius"]))
        self.assertEqual(len(prov["config_sha256"]), 64)
        self.assertNotIn("radius", prov)
        labels, label_attrs = dualrs_h5.read(os.path.join(run_dir(), "label"))
        self.assertEqual(label_attrs["schema"], "dualrs.labels")
        self.assertEqual(labels["radii"].shape, (120, 3))
        self.assertEqual(dualrs_h5.find_results(run_dir(), "dualrs.labels"),
                         [os.path.join(run_dir(), "label", "labels.h5")])
        self.assertEqual(len(dualrs_h5.find_results(run_dir())), 9)
        _, per_sigma_attrs = dualrs_h5.read(per_sigma_files()[0])
        self.assertEqual(dualrs_h5.method_kind(per_sigma_attrs), "per_sigma")

    def write_shards(self, source, folder, ranges, sha=None, count=None):
        """Shard files as data_schemas/shards.md describes them, cut from a merged result."""
        os.makedirs(folder)
        with h5py.File(source, "r") as f:
            for k, (begin, end) in enumerate(ranges):
                with h5py.File(os.path.join(folder, f"shard-{k:05d}.h5"), "w") as g:
                    for name in f.keys():
                        g[name] = f[name][begin:end]
                    for key, value in f.attrs.items():
                        g.attrs[key] = value
                    g.attrs.update({"shard_index": k, "shard_begin": begin, "shard_end": end,
                                    "shard_count": count or len(ranges), "shard_complete": 1})
                    if sha and k == 1:
                        g.attrs["config_sha256"] = sha

    def test_shards_merge_like_the_merged_file(self):
        source = os.path.join(run_dir(), "dual", "certify.h5")
        stage = self.path("stage")
        self.write_shards(source, os.path.join(stage, "shards"), [(10, 16), (0, 4), (4, 10)])
        merged, attrs = dualrs_h5.read(stage)
        whole, whole_attrs = dualrs_h5.read(source)
        self.assertEqual(set(merged), set(whole))
        for name in whole:
            np.testing.assert_array_equal(merged[name], whole[name])
        # The shards' own bookkeeping is dropped; the merged file's provenance (shard_world_sizes) stays.
        self.assertFalse([k for k in attrs if k.startswith("shard_") and k not in whole_attrs], attrs)
        self.assertEqual(attrs["method"], whole_attrs["method"])
        self.assertEqual(dualrs_h5.find_results(self.tmp), [os.path.join(stage, "shards")])
        bad = self.path("bad")
        self.write_shards(source, os.path.join(bad, "shards"), [(0, 8), (8, 16)], sha="0" * 64)
        with self.assertRaisesRegex(ValueError, "config_sha256"):
            dualrs_h5.read(bad)
        overlap = self.path("overlap")
        self.write_shards(source, os.path.join(overlap, "shards"), [(0, 9), (8, 16)])
        with self.assertRaisesRegex(ValueError, "same idx"):
            dualrs_h5.read(overlap)
        unfinished = self.path("unfinished")
        self.write_shards(source, os.path.join(unfinished, "shards"), [(0, 8)], count=2)
        with self.assertRaisesRegex(ValueError, "1 of 2 shards"):
            dualrs_h5.read(unfinished)
        self.assertEqual(len(dualrs_h5.read_shards(os.path.join(unfinished, "shards"), partial=True)[0]["idx"]), 8)


if __name__ == "__main__":
    unittest.main()
