"""Digests of a job's results, for the golden identity test (tests/golden/README.md).

A digest covers what a run computes and nothing about when, where or by which build it ran:
every HDF5 dataset (dtype, shape and bytes) and the HDF5 attributes that describe the method
(sigma, n0, n, alpha, ...), every CSV/TSV table with its timing columns dropped, the Markdown
and LaTeX tables, and the tensors of every model checkpoint (*.pt). Left out: per-example
timings (time_s), the optimizer's resume state (optimizer.pt), provenance (times, host, git revision, library versions, the resolved config, whose paths name the
temporary folder), logs, JSON sidecars and figures.
"""
import csv
import hashlib
import io
import os
import re

import h5py
import numpy as np

# HDF5 attributes that say when, where or by which build a file was written, or that hold
# absolute paths of the run folder.
PROVENANCE_ATTRIBUTES = {
    "command", "config", "config_sha256", "git_revision", "dualrs_version", "library_versions",
    "slurm_job_id", "hostname", "created_utc", "finished_utc", "input_files_sha256", "world_size",
    "rank", "path", "source", "shard_path", "merged_shards_sha256",
}
TIME_COLUMNS = re.compile(r"^(time|time_s|seconds|.*_seconds|elapsed.*|.*_utc)$")
TEXT_SUFFIXES = (".csv", ".tsv")
TABLE_SUFFIXES = (".md", ".tex")
SKIP_DIRS = {"logs", "shards", "figures"}


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _attribute_value(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return repr(value.tolist())
    if isinstance(value, np.generic):
        return repr(value.item())
    return repr(value)


def _attributes(obj):
    return {name: _attribute_value(obj.attrs[name]) for name in sorted(obj.attrs)
            if name not in PROVENANCE_ATTRIBUTES and not name.endswith("_utc")}


def digest_hdf5(path):
    """{object name: digest} for every dataset and the method attributes of one HDF5 file."""
    out = {}
    with h5py.File(path, "r") as f:
        root = _attributes(f)
        if root:
            out["/ (attributes)"] = _sha(repr(sorted(root.items())).encode())

        def visit(name, obj):
            if name.split("/")[-1] == "provenance" or TIME_COLUMNS.match(name.split("/")[-1]):
                return
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                if isinstance(data, bytes):
                    payload = data
                else:
                    array = np.asarray(data)
                    if array.dtype.kind == "O":
                        payload = repr([x.decode() if isinstance(x, bytes) else x for x in array.tolist()]).encode()
                    else:
                        payload = np.ascontiguousarray(array).tobytes()
                    payload = (str(array.dtype) + str(array.shape)).encode() + payload
                attrs = _attributes(obj)
                out[name] = _sha(payload + repr(sorted(attrs.items())).encode())
            elif isinstance(obj, h5py.Group):
                attrs = _attributes(obj)
                if attrs:
                    out[name + " (attributes)"] = _sha(repr(sorted(attrs.items())).encode())

        f.visititems(visit)
    return out


def digest_table(path):
    """The digest of a CSV/TSV file without its timing columns."""
    delimiter = "\t" if path.endswith(".tsv") else ","
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    if not rows:
        return _sha(b"")
    header = rows[0]
    keep = [i for i, name in enumerate(header) if not TIME_COLUMNS.match(name.strip().lstrip("#"))]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    for row in rows:
        writer.writerow([row[i] for i in keep if i < len(row)])
    return _sha(buf.getvalue().encode())


def digest_checkpoint(path):
    """Every tensor of a LibTorch checkpoint (name, dtype, shape and bytes), not the archive's
    bytes: LibTorch 1.13 and 2.x write the same weights into differently laid-out archives."""
    import torch  # Debian's python3-torch; only checkpoints need it
    module = torch.jit.load(path, map_location="cpu")
    h = hashlib.sha256()
    tensors = dict(module.named_parameters())
    tensors.update(dict(module.named_buffers()))
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def digest_tree(out_dir):
    """{relative path: digest or {object: digest}} for the results under a job's output folder."""
    out = {}
    for root, dirs, files in os.walk(out_dir):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("shards."))
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, out_dir)
            if name.endswith(".h5"):
                out[rel] = digest_hdf5(path)
            elif name.endswith(TEXT_SUFFIXES) and name != "train_log.csv":
                out[rel] = digest_table(path)
            elif name.endswith(".pt") and name != "optimizer.pt":
                out[rel] = digest_checkpoint(path)
            elif name.endswith(TABLE_SUFFIXES):
                with open(path, "rb") as f:
                    out[rel] = _sha(f.read())
    return out


def compute_environment():
    """What the digests depend on besides the code: the CPU's vector instruction set (oneDNN
    and OpenBLAS pick kernels by it, and float sums differ between kernels) and the LibTorch
    version (Debian's python3-torch matches its libtorch-dev: 1.13 on Debian 12, 2.6 on Debian 13),
    e.g. "x86_64-avx2-torch1.13"."""
    return _isa() + "-torch" + _torch_version()


def _torch_version():
    import torch
    return ".".join(torch.__version__.split("+")[0].split(".")[:2])


def _isa():
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    for isa in ("avx512_bf16", "avx512_vnni", "avx512f", "avx2", "avx"):
        if isa in flags:
            return "x86_64-" + isa
    return os.uname().machine


def compare(expected, actual):
    """Lines naming every difference between two digest trees (empty when identical)."""
    lines = []
    for rel in sorted(set(expected) | set(actual)):
        if rel not in actual:
            lines.append(f"missing output: {rel}")
        elif rel not in expected:
            lines.append(f"new output (not in the expected digests): {rel}")
        elif isinstance(expected[rel], dict) and isinstance(actual[rel], dict):
            for obj in sorted(set(expected[rel]) | set(actual[rel])):
                if expected[rel].get(obj) != actual[rel].get(obj):
                    what = "missing" if obj not in actual[rel] else "new" if obj not in expected[rel] else "changed"
                    lines.append(f"{what}: {rel} {obj}")
        elif expected[rel] != actual[rel]:
            lines.append(f"changed: {rel}")
    return lines
