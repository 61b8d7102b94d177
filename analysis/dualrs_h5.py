"""Read dualrs HDF5 outputs (certify / predict results, labels, sigma estimates) with h5py.

    import dualrs_h5
    data, attrs = dualrs_h5.read("runs/mnist_dual_rs/certify_dual_rs/certify.h5")
    data["radius"], data["prediction"]          # numpy arrays, one row per example
    attrs["method"], attrs["config"]["certify"]["n"]   # root attributes; config parsed

    frame, prov = dualrs_h5.frame("runs/mnist_dual_rs/certify_dual_rs")   # pandas + provenance
    rows = dualrs_h5.certified_accuracy_rows(["a/certify.h5", "b/certify.h5"], [0, 0.5, 1.0])

A path may be a file or a stage folder: the folder's certify.h5 / predict.h5 / labels.h5 /
sigma_estimates.h5, or, when that file is absent, its shards (`shards/*.h5`, written by
distributed runs) merged in idx order. Layouts: data_schemas/*.h5.md. Needs Debian's
python3-h5py and python3-numpy; `frame` also python3-pandas.
"""
import glob
import json
import os

import h5py
import numpy as np

# Root attributes every dualrs output carries (docs/architecture.md §10).
PROVENANCE_KEYS = ("schema", "schema_version", "command", "config", "config_sha256", "git_revision",
                   "dualrs_version", "seed", "rng_layout_version", "library_versions", "world_size",
                   "slurm_job_id", "hostname", "created_utc", "finished_utc")

# The file a stage folder holds, by preference.
STAGE_FILES = ("certify.h5", "predict.h5", "labels.h5", "sigma_estimates.h5")

# Attributes that describe one shard, not the merged file (data_schemas/shards.md).
_SHARD_ATTRS = ("shard_index", "shard_begin", "shard_end", "shard_size", "shard_count", "selection_count",
                "selection_sha256", "shard_rank", "shard_complete")


def _python(value):
    """An attribute as plain Python: str for strings, int/float for scalars, list for arrays."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_python(v) for v in value.tolist()] if value.dtype.kind in "SO" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_file(path):
    with h5py.File(path, "r") as f:
        data = {name: f[name][()] for name in f.keys() if isinstance(f[name], h5py.Dataset)}
        attrs = {key: _python(value) for key, value in f.attrs.items()}
    if isinstance(attrs.get("config"), str):
        attrs["config"] = json.loads(attrs["config"])
    return data, attrs


def read_shards(folder, partial=False):
    """Merges `folder/*.h5` shards (same datasets, disjoint idx; data_schemas/shards.md) into one
    (data, attrs) with rows sorted by idx, as `dualrs merge` would; the per-shard attributes
    (`shard_*`, `selection_*`) are dropped and `shards` lists the files read.

    Raises ValueError when there are no shards, when they come from different runs (schema or
    config_sha256) or have different datasets, when they hold an idx twice, or — unless
    `partial` — when fewer files than `shard_count` are present.
    """
    paths = sorted(glob.glob(os.path.join(folder, "*.h5")))
    if not paths:
        raise ValueError(f"{folder}: no shard files (*.h5)")
    parts = [_read_file(p) for p in paths]
    first_data, first_attrs = parts[0]
    for path, (data, attrs) in zip(paths, parts):
        for key in ("schema", "config_sha256", "selection_sha256"):
            if attrs.get(key) != first_attrs.get(key):
                raise ValueError(f"{path}: {key} differs from {paths[0]}'s: shards of different runs")
        if set(data) != set(first_data):
            raise ValueError(f"{path}: datasets {sorted(data)} differ from {paths[0]}'s {sorted(first_data)}")
    expected = first_attrs.get("shard_count")
    if expected is not None and len(paths) != expected and not partial:
        raise ValueError(f"{folder}: {len(paths)} of {expected} shards present (the run is not finished; "
                         "read_shards(folder, partial=True) reads them anyway)")
    merged = {name: np.concatenate([d[name] for d, _ in parts], axis=0) for name in first_data}
    if "idx" in merged:
        order = np.argsort(merged["idx"], kind="stable")
        merged = {name: value[order] for name, value in merged.items()}
        if np.any(np.diff(merged["idx"]) == 0):
            raise ValueError(f"{folder}: shards hold the same idx more than once")
    attrs = {k: v for k, v in first_attrs.items() if k not in _SHARD_ATTRS}
    attrs["shards"] = [os.path.basename(p) for p in paths]
    return merged, attrs


def resolve(path):
    """The file (or shard folder) a path names: a file as is; a stage folder's result file; else
    its `shards/` folder. Raises FileNotFoundError naming the path."""
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        for name in STAGE_FILES:
            if os.path.isfile(os.path.join(path, name)):
                return os.path.join(path, name)
        if glob.glob(os.path.join(path, "shards", "*.h5")):
            return os.path.join(path, "shards")
        if os.path.basename(os.path.normpath(path)) == "shards" and glob.glob(os.path.join(path, "*.h5")):
            return path
    raise FileNotFoundError(f"{path}: no dualrs result, label or sigma-estimate file (or shards/) there")


def read(path):
    """Returns (data, attrs): every dataset as a numpy array (example axis first) and the root
    attributes as a dict (strings as str, `config` parsed from its JSON text). `path` is a file,
    a stage folder or a shard folder (see `resolve`)."""
    target = resolve(path)
    return read_shards(target) if os.path.isdir(target) else _read_file(target)


def provenance(attrs):
    """The provenance part of `attrs` (schema, config, seeds, versions, host, times) as a dict."""
    return {k: attrs[k] for k in PROVENANCE_KEYS if k in attrs}


def to_frame(data):
    """A pandas DataFrame with one row per example: 1-D datasets as columns, each 2-D dataset
    as columns NAME_0 .. NAME_{K-1} (K = classes for `counts`, |Sigma| for label `radii`)."""
    import pandas as pd
    columns = {}
    for name, value in data.items():
        if value.ndim == 1:
            columns[name] = value
        elif value.ndim == 2:
            for j in range(value.shape[1]):
                columns[f"{name}_{j}"] = value[:, j]
    return pd.DataFrame(columns)


def frame(path):
    """(DataFrame, provenance dict) of a dualrs file or stage folder."""
    data, attrs = read(path)
    return to_frame(data), provenance(attrs)


def method_kind(attrs):
    """'dual' (Dual RS, sigma_e > 0), 'multiscale' (Sigma, no estimator), 'per_sigma' (one sigma
    on the Dual RS classifier's noise streams at alpha_c: /certify/streams "dual_rs_classifier",
    root attribute `streams`) or 'global' (one sigma)."""
    if attrs.get("streams", "global") == "dual_rs_classifier":
        return "per_sigma"
    if float(attrs.get("sigma_e", 0) or 0) > 0:
        return "dual"
    if len(attrs.get("sigma_candidates", []) or []) > 0:
        return "multiscale"
    return "global"


def find_results(root, schema="dualrs.certify"):
    """Result files under `root` whose schema is `schema` (e.g. "dualrs.labels"), sorted by path;
    a `shards/` folder counts as one result when its parent folder holds no merged file."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        h5 = sorted(f for f in files if f.endswith(".h5"))
        if os.path.basename(folder) == "shards":
            parent_has_merged = any(os.path.isfile(os.path.join(os.path.dirname(folder), f)) for f in STAGE_FILES)
            if h5 and not parent_has_merged and _schema_of(os.path.join(folder, h5[0])) == schema:
                found.append(folder)
            continue
        found.extend(os.path.join(folder, f) for f in h5 if _schema_of(os.path.join(folder, f)) == schema)
    return sorted(found)


def _schema_of(path):
    try:
        with h5py.File(path, "r") as f:
            return _python(f.attrs.get("schema", ""))
    except OSError:
        return None


def correct_and_certified(data):
    """Boolean [N]: not abstained (prediction >= 0) and prediction == label."""
    return (data["prediction"] >= 0) & (data["prediction"] == data["label"])


def certified_accuracy(path, radii, strict=False):
    """Certified accuracy of a certify result at each radius: the fraction of all examples that
    are correct, not abstained, with radius >= r (inclusive, Cohen) or > r (strict, Dual RS)."""
    data = path if isinstance(path, dict) else read(path)[0]
    ok = correct_and_certified(data)
    r = data["radius"]
    return [float(np.count_nonzero(ok & ((r > t) if strict else (r >= t)))) / len(r) for t in radii]


def certified_accuracy_rows(paths, radii, conventions=("inclusive", "strict")):
    """Rows of the tidy table (`dualrs table`'s certified_accuracy.csv) as dicts:
    method, radius, convention, certified_accuracy, num_certified, num_examples."""
    rows = []
    for path in paths:
        data, attrs = read(path)
        ok = correct_and_certified(data)
        r = data["radius"]
        for convention in conventions:
            for t in radii:
                hit = ok & ((r > t) if convention == "strict" else (r >= t))
                rows.append({"method": attrs["method"], "radius": float(t), "convention": convention,
                             "certified_accuracy": float(np.count_nonzero(hit)) / len(r),
                             "num_certified": int(np.count_nonzero(hit)), "num_examples": int(len(r))})
    return rows


if __name__ == "__main__":
    import sys
    if len(sys.argv) < 2:
        print("usage: python3 analysis/dualrs_h5.py FILE_OR_STAGE_FOLDER...", file=sys.stderr)
        sys.exit(2)
    for p in sys.argv[1:]:
        d, a = read(p)
        print(p, a.get("schema"), a.get("method", ""), {k: v.shape for k, v in d.items()})
