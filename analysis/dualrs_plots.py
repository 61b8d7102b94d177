#!/usr/bin/env python3
"""Figures of a dualrs run (Sun, Mao, Vechev, "Dual Randomized Smoothing", ICLR 2026):

  certified_accuracy_vs_radius   certified accuracy vs l2 radius, every method (paper Fig. 3)
  delta_radius_ecdf              ECDFs of Delta R_c and Delta R_sigma (Fig. 5; docs/method.md §10.2)
  optimal_sigma_distribution     which sigma of Sigma is optimal per example (Fig. 1), the
                                 estimator's choice beside it, and the labels' best sigma
  sigma_choice_confusion         the estimator's choice vs the optimal sigma (counts)
  dual_rs_diagnosis              Dual RS vs the oracle (best sigma per example, picked afterwards)
                                 and the shares of examples lost to R_sigma, to R_c or to both
                                 at each radius (paper §6.2; docs/method.md §10.2)

R_c* (the optimal sigma, Delta R_c, the oracle) comes from the Dual RS classifier certified at
every sigma on its own noise streams (/certify/streams "dual_rs_classifier") when the inputs
hold such results, else from the global-sigma results. The per-sigma results are diagnostics,
not methods: they are left out of the accuracy figure.

Each figure is written as PNG and PDF (headless, Agg) with a JSON sidecar NAME.json listing the
series it contains (with their data); figures.json indexes the figures and says why any was
skipped. Usage:

  python3 analysis/dualrs_plots.py [--out DIR] [--convention C] [--formats F] -- RUN_DIR [FILES_OR_FOLDERS...]

`--` ends the options, so that a folder whose name starts with '-' is an input; `dualrs plot
RUN_DIR` calls this script that way. Exit codes: 0 done, 2 bad input (one line naming the
file), 3 a Python module is missing (python3-matplotlib, python3-h5py, python3-numpy).
"""
import argparse
import json
import os
import sys
import tempfile

EXIT_BAD_INPUT = 2
EXIT_MISSING_MODULE = 3

try:
    import numpy as np
    import h5py  # noqa: F401  (dualrs_h5 needs it; fail here with a clear message)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError as error:  # pragma: no cover - exercised by `dualrs plot` without matplotlib
    print(f"dualrs_plots: missing Python module '{error.name}' for {sys.executable}: install Debian's "
          "python3-matplotlib python3-h5py python3-numpy (scripts/install-deps.sh)", file=sys.stderr)
    sys.exit(EXIT_MISSING_MODULE)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dualrs_h5  # noqa: E402

_UMASK = os.umask(0)
os.umask(_UMASK)

FIGURES = ("certified_accuracy_vs_radius", "delta_radius_ecdf", "optimal_sigma_distribution",
           "sigma_choice_confusion", "dual_rs_diagnosis")


class BadInput(Exception):
    pass


def fmt(sigma):
    """0.25 -> '0.25', 1 -> '1.0' (as dualrs names sigmas)."""
    text = repr(float(sigma))
    return text


# ---------------------------------------------------------------------------------------------
# Inputs

class Result:
    """One certification result: its data, attributes, kind and a unique label."""

    def __init__(self, path, data, attrs, root):
        self.path = path
        self.data = data
        self.attrs = attrs
        self.kind = dualrs_h5.method_kind(attrs)
        self.method = attrs.get("method", os.path.basename(os.path.dirname(path)))
        self.label = self.method
        self.source = os.path.relpath(path, root) if root else path
        self.sigma = float(attrs.get("sigma", 0) or 0)
        self.sigmas = [float(s) for s in (attrs.get("sigma_candidates", []) or [])]

    def noise(self):
        if self.sigmas:
            return "{" + ", ".join(fmt(s) for s in self.sigmas) + "}"
        return fmt(self.sigma) if self.sigma > 0 else ""


def collect(paths, root):
    """Certify results and label files named by `paths` (files or folders, searched recursively)."""
    results, labels = [], []
    for path in paths:
        if not os.path.exists(path):
            raise BadInput(f"{path}: no such file or folder")
        if os.path.isdir(path) and os.path.basename(os.path.normpath(path)) != "shards":
            certify = dualrs_h5.find_results(path, "dualrs.certify")
            label_files = dualrs_h5.find_results(path, "dualrs.labels")
        else:
            schema = read_checked(path)[1].get("schema")
            certify = [path] if schema == "dualrs.certify" else []
            label_files = [path] if schema == "dualrs.labels" else []
            if not certify and not label_files:
                raise BadInput(f"{path}: schema '{schema}' is neither dualrs.certify nor dualrs.labels")
        for p in certify:
            if all(os.path.abspath(p) != os.path.abspath(r.path) for r in results):
                data, attrs = read_checked(p)
                results.append(Result(p, data, attrs, root))
        for p in label_files:
            if all(os.path.abspath(p) != os.path.abspath(q) for q, _, _ in labels):
                data, attrs = read_checked(p)
                labels.append((p, data, attrs))
    # Unique labels: a method found in several files gets its folder appended.
    for r in results:
        same = [o for o in results if o.method == r.method]
        if len(same) > 1:
            r.label = f"{r.method} [{os.path.basename(os.path.dirname(os.path.abspath(r.path)))}]"
    order = {"global": 0, "multiscale": 1, "dual": 2, "per_sigma": 3}
    results.sort(key=lambda r: (order.get(r.kind, 3), r.sigma, r.label))
    return results, labels


def read_checked(path):
    try:
        return dualrs_h5.read(path)
    except (OSError, ValueError, KeyError) as error:
        raise BadInput(f"{path}: cannot read as a dualrs HDF5 file ({error})") from error


# ---------------------------------------------------------------------------------------------
# Computations (docs/method.md §10), independent of the C++ code

def accuracy_curve(data, convention):
    """Exact step points of certified accuracy vs radius: x = 0 and every distinct radius of a
    correct certified example (ascending); y = certified accuracy at x under the convention.
    Inclusive: acc(r) = y_k for the first x_k >= r (0 beyond the last). Strict: acc(r) = y_k for
    the last x_k <= r."""
    ok = dualrs_h5.correct_and_certified(data)
    radius = data["radius"]
    n = len(radius)
    x = np.unique(np.concatenate([[0.0], radius[ok]]))
    if convention == "strict":
        y = [float(np.count_nonzero(ok & (radius > t))) / n for t in x]
    else:
        y = [float(np.count_nonzero(ok & (radius >= t))) / n for t in x]
    return x.tolist(), y


def correct_radius(data):
    ok = dualrs_h5.correct_and_certified(data)
    return np.where(ok, data["radius"], 0.0)


def reference_files(dual, candidates):
    """The result at each sigma of the Dual RS file's Sigma over its examples, or None."""
    by_sigma = []
    for s in dual.sigmas:
        match = [g for g in candidates if g.sigma == s and np.array_equal(g.data["idx"], dual.data["idx"])]
        if not match:
            return None
        by_sigma.append(match[0])
    return by_sigma


def sigma_analysis(dual, globals_, per_sigma=()):
    """Per example of a Dual RS result: the optimal sigma index (largest correct reference
    radius, ties -> smaller sigma, -1 when none certifies correctly), the oracle radius R_c*,
    the estimator's choice (-1 = abstained), Delta R_c = R_c* - R_c where a sigma was chosen,
    Delta R_sigma = R_sigma - R_c where the example is certified. The reference is the per-sigma
    results of the Dual RS classifier when they cover Sigma, else the global-sigma results.
    Raises BadInput when neither covers Sigma over the same examples."""
    by_sigma, reference = reference_files(dual, per_sigma), "dual_rs_classifier"
    if by_sigma is None:
        by_sigma, reference = reference_files(dual, globals_), "global_sigma"
    if by_sigma is None:
        missing = [fmt(s) for s in dual.sigmas if not any(g.sigma == s for g in globals_)]
        raise BadInput(f"no global-sigma result at sigma = {', '.join(missing) or '?'} over the examples of "
                       f"{dual.source}")
    radii = np.stack([correct_radius(g.data) for g in by_sigma], axis=1)  # [N, S]
    best_radius = radii.max(axis=1)
    optimal = np.where(best_radius > 0, radii.argmax(axis=1), -1)  # argmax: first maximum = smaller sigma
    d = dual.data
    chosen = d["sigma_index"]
    certified = d["prediction"] >= 0
    ok = certified & (d["prediction"] == d["label"])
    r_c = np.where(ok, d["r_c"], 0.0)
    delta_r_c = (best_radius - r_c)[chosen >= 0]
    delta_r_sigma = (d["r_sigma"] - d["r_c"])[certified]
    return {"optimal": optimal, "chosen": chosen, "delta_r_c": delta_r_c, "delta_r_sigma": delta_r_sigma,
            "globals": by_sigma, "reference": reference, "oracle_radius": best_radius, "r_c": r_c,
            "r_sigma": np.where(chosen >= 0, d["r_sigma"], 0.0), "radius": np.where(ok, d["radius"], 0.0)}


def diagnosis(a, convention):
    """Shares of the examples at every radius where one changes (x ascending from 0): Dual RS
    certified, the oracle certified, the estimator abstained, lost to R_sigma only, to R_c only,
    to both. Between two x the shares are those of the next x (inclusive) or of the previous x
    (strict), as for the accuracy curves."""
    values = np.concatenate([a["oracle_radius"], a["radius"], a["r_sigma"], a["r_c"]])
    x = np.unique(np.concatenate([[0.0], values[values > 0]]))
    n = max(1, len(a["radius"]))

    def reaches(v, t):
        return (v > 0) & ((v > t) if convention == "strict" else (v >= t))

    out = {k: [] for k in ("dual_rs", "oracle", "estimator_abstained", "lost_to_r_sigma", "lost_to_r_c", "lost_to_both")}
    chose = a["chosen"] >= 0
    for t in x:
        dual = reaches(a["radius"], t)
        s_ok, c_ok = reaches(a["r_sigma"], t), reaches(a["r_c"], t)
        rest = ~dual & chose
        out["dual_rs"].append(float(np.count_nonzero(dual)) / n)
        out["oracle"].append(float(np.count_nonzero(reaches(a["oracle_radius"], t))) / n)
        out["estimator_abstained"].append(float(np.count_nonzero(~dual & ~chose)) / n)
        out["lost_to_r_sigma"].append(float(np.count_nonzero(rest & ~s_ok & c_ok)) / n)
        out["lost_to_r_c"].append(float(np.count_nonzero(rest & s_ok & ~c_ok)) / n)
        out["lost_to_both"].append(float(np.count_nonzero(rest & ~(s_ok ^ c_ok))) / n)
    return x.tolist(), out


def optimal_index(globals_):
    """Optimal sigma index per example over global results that share their examples."""
    radii = np.stack([correct_radius(g.data) for g in globals_], axis=1)
    return np.where(radii.max(axis=1) > 0, radii.argmax(axis=1), -1)


def ecdf(values):
    x = np.sort(np.asarray(values, dtype=float))
    y = np.arange(1, len(x) + 1) / max(1, len(x))
    return x.tolist(), y.tolist()


def histogram(indices, count):
    """Counts per sigma index 0..count-1, then the -1 bucket ('none' / 'abstain')."""
    indices = np.asarray(indices)
    return [int(np.count_nonzero(indices == i)) for i in range(count)] + [int(np.count_nonzero(indices < 0))]


# ---------------------------------------------------------------------------------------------
# Output

def save(fig, out, name, formats, sidecar):
    """Writes NAME.<format> for each format and NAME.json, each atomically (temp file + rename)."""
    files = {}
    for ext in formats:
        final = os.path.join(out, f"{name}.{ext}")
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=f".{ext}", dir=out)
        os.close(fd)
        metadata = {"CreationDate": None} if ext == "pdf" else ({"Date": None} if ext == "svg" else None)
        fig.savefig(tmp, format=ext, dpi=200, bbox_inches="tight", metadata=metadata)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, final)
        files[ext] = os.path.basename(final)
    plt.close(fig)
    sidecar = {"figure": name, "files": files, **sidecar}
    write_json(os.path.join(out, f"{name}.json"), sidecar)
    return {"name": name, "files": list(files.values()), "sidecar": f"{name}.json",
            "series": [s["label"] for s in sidecar["series"]]}


def write_json(path, obj):
    fd, tmp = tempfile.mkstemp(prefix=".tmp.", suffix=".json", dir=os.path.dirname(path))
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)


def style():
    plt.rcParams.update({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8,
                         "figure.dpi": 100, "savefig.dpi": 200})


def colors(results):
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {r.label: cycle[i % len(cycle)] for i, r in enumerate(results)}


def plot_accuracy(results, convention, out, formats, palette):
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    series = []
    right = 0.0
    for r in results:
        x, y = accuracy_curve(r.data, convention)
        right = max(right, x[-1])
        series.append({"label": r.label, "method": r.method, "kind": r.kind, "noise": r.noise(), "source": r.source,
                       "num_examples": int(len(r.data["radius"])), "x": x, "y": y})
    right = max(0.5, right * 1.05)
    for r, s in zip(results, series):
        xs, ys = s["x"] + [right], s["y"] + [0.0]
        ax.plot(xs, [100 * v for v in ys], drawstyle="steps-post" if convention == "strict" else "steps-pre",
                label=r.label, color=palette[r.label], linestyle="-" if r.kind != "global" else "--", linewidth=1.3)
    ax.set_xlim(0, right)
    ax.set_ylim(0, 100)
    ax.set_xlabel(r"$\ell_2$ radius $r$")
    ax.set_ylabel("certified accuracy (%)")
    ax.set_title(f"Certified accuracy ({convention}: radius {'>' if convention == 'strict' else '≥'} r)", fontsize=9)
    ax.legend(loc="upper right")
    return save(fig, out, "certified_accuracy_vs_radius", formats, {
        "title": "Certified accuracy vs radius (Dual RS paper Fig. 3)", "convention": convention,
        "x": "radius (l2, [0,1]-pixel units)", "y": "certified accuracy (fraction of examples)",
        "step": ("inclusive: acc(r) = y[k] for the first x[k] >= r, 0 beyond the last x"
                 if convention != "strict" else "strict: acc(r) = y[k] for the last x[k] <= r"),
        "series": series})


def plot_deltas(analyses, out, formats, palette):
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.0))
    series = []
    for panel, ax, title in (("delta_r_c", axes[0], r"$\Delta R_c = R_c^* - R_c$"),
                             ("delta_r_sigma", axes[1], r"$\Delta R_\sigma = R_\sigma - R_c$")):
        for dual, a in analyses:
            x, y = ecdf(a[panel])
            series.append({"label": dual.label, "method": dual.method, "panel": panel, "source": dual.source,
                           "reference": a["reference"], "count": len(x), "x": x, "y": y})
            if x:
                ax.step(x, y, where="post", label=dual.label, color=palette[dual.label], linewidth=1.3)
        ax.axvline(0.0, color="0.4", linewidth=0.8)
        ax.set_xlabel(title)
        ax.set_ylabel("fraction of examples")
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower right")
    axes[0].set_title(r"radius lost to the choice of $\sigma$", fontsize=9)
    axes[1].set_title("< 0: the estimator's radius binds", fontsize=9)
    fig.tight_layout()
    return save(fig, out, "delta_radius_ecdf", formats, {
        "title": "ECDFs of Delta R_c and Delta R_sigma (Dual RS paper Fig. 5)",
        "x": "Delta radius (l2)", "y": "ECDF",
        "definition": {"delta_r_c": "R_c*(x) - R_c(x) over examples where the estimator chose a sigma; R_c* = best "
                                    "correct per-sigma radius over Sigma (see each series' reference), R_c = 0 "
                                    "unless correct",
                       "delta_r_sigma": "R_sigma - R_c over examples Dual RS certified"},
        "series": series})


def plot_diagnosis(analyses, convention, out, formats, palette):
    fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.1))
    series = []
    right = 0.5
    for dual, a in analyses:
        x, shares = diagnosis(a, convention)
        right = max(right, x[-1] * 1.05)
        series.append({"label": dual.label, "method": dual.method, "source": dual.source, "reference": a["reference"],
                       "convention": convention, "num_examples": int(len(a["radius"])), "x": x, **shares})
    where = "post" if convention == "strict" else "pre"
    for (dual, a), s in zip(analyses, series):
        xs = s["x"] + [right]
        color = palette[dual.label]
        axes[0].step(xs, [100 * v for v in s["dual_rs"] + [0.0]], where=where, color=color, linewidth=1.3,
                     label=dual.label)
        axes[0].step(xs, [100 * v for v in s["oracle"] + [0.0]], where=where, color=color, linewidth=1.0,
                     linestyle=":", label=f"oracle σ ({dual.label})")
        for key, style in (("lost_to_r_sigma", "-"), ("lost_to_r_c", "--"), ("lost_to_both", ":")):
            tail = s[key][-1]
            axes[1].step(xs, [100 * v for v in s[key] + [tail]], where=where, color=color, linestyle=style,
                         linewidth=1.2, label=f"{key.replace('lost_to_', 'lost to ').replace('r_sigma', 'R_σ').replace('r_c', 'R_c')}"
                         + (f" ({dual.label})" if len(analyses) > 1 else ""))
    for ax in axes:
        ax.set_xlim(0, right)
        ax.set_ylim(0, 100)
        ax.set_xlabel(r"$\ell_2$ radius $r$")
        ax.legend(loc="upper right", fontsize=7)
    axes[0].set_ylabel("certified accuracy (%)")
    axes[0].set_title("Dual RS and the oracle σ (an upper bound)", fontsize=9)
    axes[1].set_ylabel("examples (%)")
    axes[1].set_title("not certified at r: which radius binds", fontsize=9)
    fig.tight_layout()
    return save(fig, out, "dual_rs_diagnosis", formats, {
        "title": "Dual RS against the oracle sigma, and what binds (Dual RS paper §6.2)", "convention": convention,
        "x": "radius (l2, [0,1]-pixel units)", "y": "fraction of examples",
        "step": ("inclusive: value(r) = y[k] for the first x[k] >= r" if convention != "strict"
                 else "strict: value(r) = y[k] for the last x[k] <= r"),
        "definition": {"oracle": "R_c*(x) reaches r: the best sigma per example, picked afterwards (not a method)",
                       "lost_to_r_sigma": "not certified at r; R_sigma misses r, R_c reaches it",
                       "lost_to_r_c": "not certified at r; R_c misses r (or a wrong class), R_sigma reaches it",
                       "lost_to_both": "not certified at r; both miss it",
                       "estimator_abstained": "the estimator abstained (no sigma chosen)"},
        "series": series})


def plot_sigma_distribution(sigmas, bars, out, formats):
    categories = [fmt(s) for s in sigmas] + ["none"]
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    width = 0.8 / max(1, len(bars))
    series = []
    for i, (label, kind, source, counts) in enumerate(bars):
        total = max(1, sum(counts))
        fractions = [c / total for c in counts]
        xs = [j + (i - (len(bars) - 1) / 2) * width for j in range(len(categories))]
        ax.bar(xs, [100 * f for f in fractions], width=width, label=label)
        series.append({"label": label, "kind": kind, "source": source, "categories": categories,
                       "counts": counts, "fractions": fractions})
    ax.set_xticks(range(len(categories)))
    ax.set_xticklabels([rf"$\sigma$={c}" if c != "none" else "none / abstain" for c in categories])
    ax.set_ylabel("examples (%)")
    ax.legend(loc="upper left")
    return save(fig, out, "optimal_sigma_distribution", formats, {
        "title": "Distribution of the optimal sigma (Dual RS paper Fig. 1)", "categories": categories,
        "definition": "optimal sigma: the sigma of Sigma whose global-sigma certification gives the largest correct "
                      "radius (ties -> smaller sigma; none: no sigma certifies the example correctly); estimator: "
                      "the Dual RS choice (none = abstained); labels: the best sigma of the per-sigma labels",
        "series": series})


def plot_confusion(analyses, out, formats):
    fig, axes = plt.subplots(1, len(analyses), figsize=(3.6 * len(analyses), 3.2), squeeze=False)
    series = []
    for ax, (dual, a) in zip(axes[0], analyses):
        s = len(dual.sigmas)
        matrix = np.zeros((s + 1, s + 1), dtype=int)
        for o, c in zip(a["optimal"], a["chosen"]):
            matrix[o if o >= 0 else s, c if c >= 0 else s] += 1
        rows = [fmt(v) for v in dual.sigmas] + ["none"]
        columns = [fmt(v) for v in dual.sigmas] + ["abstain"]
        ax.imshow(matrix, cmap="Blues")
        for i in range(s + 1):
            for j in range(s + 1):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black", fontsize=8)
        ax.set_xticks(range(s + 1))
        ax.set_xticklabels(columns)
        ax.set_yticks(range(s + 1))
        ax.set_yticklabels(rows)
        ax.set_xlabel(r"estimator's choice of $\sigma$")
        ax.set_ylabel(r"optimal $\sigma$")
        ax.set_title(dual.label, fontsize=9)
        ax.grid(False)
        series.append({"label": dual.label, "method": dual.method, "source": dual.source, "rows": rows,
                       "columns": columns, "counts": matrix.tolist()})
    fig.tight_layout()
    return save(fig, out, "sigma_choice_confusion", formats, {
        "title": "The estimator's sigma choice vs the optimal sigma",
        "definition": "counts[i][j]: examples whose optimal sigma is rows[i] and whose chosen sigma is columns[j]",
        "series": series})


def make_figures(inputs, out, convention="inclusive", formats=("png", "pdf"), root=None):
    """Writes every figure the inputs allow into `out`; returns the figures.json index."""
    results, labels = collect(inputs, root)
    if not results:
        raise BadInput(f"{', '.join(inputs)}: no certification results (certify.h5) found")
    os.makedirs(out, exist_ok=True)
    style()
    palette = colors(results)
    index = {"inputs": [r.source for r in results] + [os.path.relpath(p, root) if root else p for p, _, _ in labels],
             "convention": convention, "figures": [], "skipped": []}
    methods = [r for r in results if r.kind != "per_sigma"]
    index["figures"].append(plot_accuracy(methods or results, convention, out, formats, palette))

    globals_ = [r for r in results if r.kind == "global"]
    per_sigma = [r for r in results if r.kind == "per_sigma"]
    analyses, skipped = [], []
    for dual in (r for r in results if r.kind == "dual"):
        try:
            analyses.append((dual, sigma_analysis(dual, globals_, per_sigma)))
        except BadInput as error:
            skipped.append(f"{dual.label}: {error}")
    if analyses:
        index["figures"].append(plot_deltas(analyses, out, formats, palette))
        index["figures"].append(plot_confusion(analyses, out, formats))
    else:
        reason = "; ".join(skipped) or "no Dual RS result (sigma_e > 0) among the inputs"
        index["skipped"] += [{"name": "delta_radius_ecdf", "reason": reason},
                             {"name": "sigma_choice_confusion", "reason": reason}]

    # Fig. 1: Sigma from the first Dual RS analysis, else the global sigmas over shared examples.
    bars = []
    if analyses:
        dual, a = analyses[0]
        sigmas = dual.sigmas
        split = dual.attrs.get("split", "")
        bars.append((f"optimal σ ({split}, {dual.data['idx'].size} examples)", "optimal", dual.source,
                     histogram(a["optimal"], len(sigmas))))
        for d, b in analyses:
            bars.append((f"estimator's choice ({d.label})", "chosen", d.source, histogram(b["chosen"], len(sigmas))))
    else:
        shared = [g for g in globals_ if globals_ and np.array_equal(g.data["idx"], globals_[0].data["idx"])]
        shared = sorted({g.sigma: g for g in shared}.values(), key=lambda g: g.sigma)
        sigmas = [g.sigma for g in shared]
        if len(shared) >= 2:
            bars.append((f"optimal σ ({shared[0].attrs.get('split', '')}, {shared[0].data['idx'].size} examples)", "optimal",
                         ", ".join(g.source for g in shared), histogram(optimal_index(shared), len(sigmas))))
    for path, data, attrs in labels:
        label_sigmas = [float(s) for s in attrs.get("sigma_candidates", [])]
        if sigmas and label_sigmas == list(sigmas):
            source = os.path.relpath(path, root) if root else path
            bars.append((f"best σ in the labels ({attrs.get('split', '')}, {len(data['best'])} examples)",
                         "labels", source, histogram(data["best"], len(sigmas))))
    if bars:
        index["figures"].append(plot_sigma_distribution(sigmas, bars, out, formats))
    else:
        index["skipped"].append({"name": "optimal_sigma_distribution",
                                 "reason": "needs a Dual RS result or global-sigma results at two or more sigmas "
                                           "over the same examples"})
    if analyses:
        index["figures"].append(plot_diagnosis(analyses, convention, out, formats, palette))
    else:
        index["skipped"].append({"name": "dual_rs_diagnosis",
                                 "reason": "; ".join(skipped) or "no Dual RS result (sigma_e > 0) among the inputs"})
    write_json(os.path.join(out, "figures.json"), index)
    return index


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="run folder(s), stage folders or certify.h5 / labels.h5 files")
    parser.add_argument("--out", help="output folder (default: FIRST_INPUT/figures)")
    parser.add_argument("--convention", choices=("inclusive", "strict"), default="inclusive")
    parser.add_argument("--formats", default="png,pdf", help="comma list of png, pdf, svg (default png,pdf)")
    parser.add_argument("--quiet", "-q", action="store_true")
    args = parser.parse_args(argv)
    formats = [f for f in args.formats.split(",") if f]
    if not formats or any(f not in ("png", "pdf", "svg") for f in formats):
        print(f"dualrs_plots: --formats: expected a comma list of png, pdf, svg, got '{args.formats}'", file=sys.stderr)
        return EXIT_BAD_INPUT
    first = args.inputs[0]
    out = args.out or os.path.join(first if os.path.isdir(first) else os.path.dirname(first) or ".", "figures")
    root = first if os.path.isdir(first) else None
    try:
        index = make_figures(args.inputs, out, args.convention, formats, root)
    except BadInput as error:
        print(f"dualrs_plots: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.quiet:
        for fig in index["figures"]:
            print(f"{os.path.join(out, fig['name'])}: {', '.join(fig['series'])}")
        for skip in index["skipped"]:
            print(f"skipped {skip['name']}: {skip['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
