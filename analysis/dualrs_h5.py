"""Read dualrs HDF5 outputs (certify/predict results, labels, sigma estimates) with h5py.

    from dualrs_h5 import read
    data, attrs = read("runs/mnist_dual_rs/certify_dual_rs/certify.h5")
    data["radius"], data["prediction"], attrs["method"], attrs["config"]["certify"]["n"]

Every dataset comes back as a numpy array; root attributes as a dict, with `config` parsed
from its JSON text. Layouts: data_schemas/*.h5.md. Needs Debian's python3-h5py.
"""
import json

import h5py


def read(path):
    """Returns (datasets, attributes) of a dualrs HDF5 file."""
    with h5py.File(path, "r") as f:
        data = {name: f[name][()] for name in f.keys() if isinstance(f[name], h5py.Dataset)}
        attrs = {}
        for key, value in f.attrs.items():
            if hasattr(value, "tolist"):
                value = value.tolist()
            attrs[key] = json.loads(value) if key == "config" else value
    return data, attrs


def certified_accuracy(path, radii, strict=False):
    """Certified accuracy of a certify.h5 at each radius (inclusive >= r unless strict)."""
    data, _ = read(path)
    ok = (data["prediction"] == data["label"]) & (data["prediction"] >= 0)
    r = data["radius"]
    return [float(((r > t) if strict else (r >= t))[ok].sum()) / len(r) for t in radii]


if __name__ == "__main__":
    import sys
    for p in sys.argv[1:]:
        d, a = read(p)
        print(p, a.get("schema"), a.get("method", ""), {k: v.shape for k, v in d.items()})
