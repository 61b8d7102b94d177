#!/usr/bin/env python3
"""A tiny ILSVRC-2012 folder tree and the pixels dualrs must read from it, computed
independently of the C++ code, for tests/unit/data/image_dataset_test.cpp.

The JPEGs are encoded with PIL (Debian python3-pil) in the kinds ImageNet holds: RGB with
4:2:0, 4:2:2 and 4:4:4 chroma, progressive, greyscale, and Adobe CMYK (22 ILSVRC-2012 train
files are CMYK). Sizes are odd and both orientations, and one image makes the centre crop
offset fall on .5 (torchvision rounds half to even).

For every example (in dualrs's order: val first, by (class, file name) as torchvision's
ImageFolder numbers them, then train likewise) the JSON holds
  decoded      PIL's Image.open(f).convert("RGB") bytes, [3, H, W] as hex (torchvision's
               ImageFolder loader); dualrs must match them exactly (same libjpeg-turbo
               IDCT and upsampling; PIL's CMYK -> RGB formula);
  transformed  torchvision's Resize(resize) + CenterCrop(crop) on the float tensor
               x = bytes / 255: torch.nn.functional.interpolate(x, (h', w'), "bilinear",
               align_corners=False, antialias=True) with h', w' = (resize, int(resize * long
               / short)), then top/left = round((H' - crop) / 2) (Python's round, half to
               even), as torchvision 0.14 computes them; tolerance 1e-6 in the test.
  pil_path_max_abs_diff  (information only) the largest difference to torchvision's PIL path
               (PIL's antialiased bilinear resize, rounded to uint8, then the crop).

    /usr/bin/python3 tests/reference/make_image_reference.py --out tests/data
"""
import argparse
import json
import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SYNSETS = ["n01440764", "n01443537", "n01484850"]  # the first three ILSVRC-2012 classes
NAMES = ["tench, Tinca tinca", "goldfish, Carassius auratus", "great white shark, white shark"]
RESIZE, CROP = 20, 16


def picture(h, w, seed):
    """Smooth colour gradients plus noise: JPEG has real work to do."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255.0 / max(w - 1, 1), y * 255.0 / max(h - 1, 1), (x + y) * 127.0 / max(h + w - 2, 1)], -1)
    return np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)


# (relative path, class, height, width, kind)
FILES = [
    ("train/n01440764/n01440764_10026.JPEG", 0, 27, 40, "rgb420"),
    ("train/n01440764/n01440764_10027.JPEG", 0, 37, 23, "rgb444"),
    ("train/n01443537/n01443537_1.JPEG", 1, 30, 30, "grey"),
    ("train/n01443537/n01443537_20.JPEG", 1, 20, 33, "cmyk"),
    ("train/n01484850/n01484850_5.JPEG", 2, 28, 45, "progressive"),
    ("val/ILSVRC2012_val_00000001.JPEG", 1, 31, 24, "rgb422"),
    ("val/ILSVRC2012_val_00000002.JPEG", 0, 25, 41, "rgb420"),
    ("val/ILSVRC2012_val_00000003.JPEG", 2, 22, 35, "cmyk"),
    ("val/ILSVRC2012_val_00000004.JPEG", 1, 33, 20, "rgb420"),
]


def write_jpeg(path, kind, h, w, seed):
    rgb = picture(h, w, seed)
    if kind == "grey":
        Image.fromarray(rgb[..., 0], "L").save(path, "JPEG", quality=90)
    elif kind == "cmyk":
        cmyk = np.concatenate([255 - rgb, np.random.default_rng(seed + 1).integers(0, 80, (h, w, 1), np.uint8)], -1)
        Image.fromarray(cmyk, "CMYK").save(path, "JPEG", quality=90)
    else:
        subsampling = {"rgb420": 2, "rgb422": 1, "rgb444": 0, "progressive": 2}[kind]
        Image.fromarray(rgb, "RGB").save(path, "JPEG", quality=90, subsampling=subsampling,
                                         progressive=(kind == "progressive"))


def crop_offsets(h, w, crop):
    return int(round((h - crop) / 2.0)), int(round((w - crop) / 2.0))


def resized_size(h, w, size):
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_long, new_short) if w <= h else (new_short, new_long)


def transform(decoded):
    x = torch.from_numpy(decoded.copy()).permute(2, 0, 1).float().div(255.0)
    h, w = resized_size(x.shape[1], x.shape[2], RESIZE)
    y = F.interpolate(x[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0]
    top, left = crop_offsets(h, w, CROP)
    return y[:, top:top + CROP, left:left + CROP]


def pil_path(image):
    h, w = resized_size(image.height, image.width, RESIZE)
    r = np.asarray(image.resize((w, h), Image.BILINEAR)).astype(np.float32) / 255.0
    top, left = crop_offsets(h, w, CROP)
    return torch.from_numpy(r[top:top + CROP, left:left + CROP]).permute(2, 0, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "data"))
    args = parser.parse_args()
    root = os.path.join(args.out, "imagenet_tiny")
    shutil.rmtree(root, ignore_errors=True)
    for f, *_ in FILES:
        os.makedirs(os.path.join(root, os.path.dirname(f)), exist_ok=True)
    with open(os.path.join(root, "synsets.txt"), "w") as out:
        for wnid, name in zip(SYNSETS, NAMES):
            out.write(f"{wnid} {name}\n")
    with open(os.path.join(root, "val_labels.txt"), "w") as out:
        for f, cls, *_ in FILES:
            if f.startswith("val/"):
                out.write(f"{os.path.basename(f)} {SYNSETS[cls]}\n")
    for seed, (f, cls, h, w, kind) in enumerate(FILES):
        write_jpeg(os.path.join(root, f), kind, h, w, seed)

    def order(entry):
        f, cls = entry[0], entry[1]
        return (0 if f.startswith("val/") else 1, cls, os.path.basename(f))

    examples = []
    worst_pil = 0.0
    for index, (f, cls, h, w, kind) in enumerate(sorted(FILES, key=order)):
        image = Image.open(os.path.join(root, f)).convert("RGB")
        decoded = np.asarray(image)
        assert decoded.shape == (h, w, 3), (f, decoded.shape)
        t = transform(decoded)
        worst_pil = max(worst_pil, float((t - pil_path(image)).abs().max()))
        examples.append({
            "index": index, "file": f, "label": cls, "kind": kind, "height": h, "width": w,
            "decoded": decoded.transpose(2, 0, 1).tobytes().hex(),
            "transformed": [float(f"{v:.9g}") for v in t.flatten().tolist()],
        })
    reference = {"resize": RESIZE, "crop": CROP, "synsets": SYNSETS, "num_val": 4, "num_train": 5,
                 "pil_path_max_abs_diff": worst_pil, "examples": examples}
    path = os.path.join(args.out, "imagenet_tiny_reference.json")
    examples = reference.pop("examples")
    with open(path, "w") as out:  # one example per line keeps diffs readable
        out.write(json.dumps(reference)[:-1] + ', "examples": [\n')
        out.write(",\n".join(json.dumps(e) for e in examples) + "\n]}\n")
    print("wrote", root, "and", path, f"(largest difference to the PIL path: {worst_pil:.4g})")


if __name__ == "__main__":
    main()
