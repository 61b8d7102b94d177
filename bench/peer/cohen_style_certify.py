#!/usr/bin/env python3
"""A Cohen-style CERTIFY loop in plain PyTorch: the yardstick that dualrs's certification is
timed against (bench/run_peer_certify.sh).

It follows the algorithm as Cohen, Rosenfeld and Kolter (ICML 2019) describe it, written here
from that description: for each input, draw n0 noisy copies in batches, take the top class
c_A, draw n fresh copies, count the votes for c_A, take the one-sided Clopper-Pearson lower
bound p_A at level alpha and certify radius sigma * Phi^-1(p_A) when p_A > 1/2, else abstain.
Noise is torch.randn on the host (what their code does on a CPU), the model is a TorchScript
file, forwards run under torch.no_grad.

Only Debian's python3-torch, python3-numpy, python3-scipy and python3-statsmodels are used.
Output: a TSV in Cohen et al.'s column layout (idx label predict radius correct time).
"""
import argparse
import gzip
import time

import numpy as np
import torch
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint


def read_idx(path):
    """An IDX file (optionally gzip'd) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def vote_counts(model, image, sigma, num, batch, num_classes):
    """Votes of `num` noisy copies of `image` ([C, H, W]) in batches of `batch`."""
    counts = np.zeros(num_classes, dtype=np.int64)
    left = num
    with torch.no_grad():
        while left > 0:
            size = min(batch, left)
            left -= size
            copies = image.unsqueeze(0).repeat(size, 1, 1, 1)
            noisy = copies + sigma * torch.randn_like(copies)
            top = model(noisy).argmax(1)
            counts += np.bincount(top.numpy(), minlength=num_classes)
    return counts


def certify(model, image, sigma, n0, n, alpha, batch, num_classes):
    """(predicted class or -1, radius) of CERTIFY for one input."""
    selection = vote_counts(model, image, sigma, n0, batch, num_classes)
    top = int(selection.argmax())
    estimation = vote_counts(model, image, sigma, n, batch, num_classes)
    # One-sided (1 - alpha) lower bound: the lower end of the two-sided 1 - 2 alpha interval.
    p_lower = proportion_confint(int(estimation[top]), n, alpha=2 * alpha, method="beta")[0]
    if p_lower < 0.5:
        return -1, 0.0
    return top, sigma * norm.ppf(p_lower)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--torchscript", required=True, help="classifier: forward(x [B,C,H,W] in [0,1]) -> [B,K]")
    ap.add_argument("--images", required=True, help="IDX images (.gz)")
    ap.add_argument("--labels", required=True, help="IDX labels (.gz)")
    ap.add_argument("--split", required=True, help="text file of dataset indices, one per line")
    ap.add_argument("--count", type=int, default=300, help="first COUNT indices of the split")
    ap.add_argument("--sigma", type=float, default=0.25)
    ap.add_argument("--n0", type=int, default=100)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--alpha", type=float, default=0.001)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="", help="TSV of the certificates (default: none)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = torch.jit.load(args.torchscript).eval()
    images = read_idx(args.images)
    labels = read_idx(args.labels)
    indices = [int(line) for line in open(args.split) if line.strip()][: args.count]

    rows = []
    start = time.time()
    for idx in indices:
        t0 = time.time()
        image = torch.from_numpy(images[idx].astype(np.float32) / 255.0).unsqueeze(0)
        label = int(labels[idx])
        predict, radius = certify(model, image, args.sigma, args.n0, args.n, args.alpha, args.batch, args.num_classes)
        rows.append((idx, label, predict, radius, int(predict == label), time.time() - t0))
    elapsed = time.time() - start
    certified = sum(r[4] for r in rows)
    copies = len(rows) * (args.n0 + args.n)
    print(f"cohen-style certify: {len(rows)} inputs, {certified} correct and certified, {elapsed:.2f} s, "
          f"{copies / elapsed:,.0f} noisy copies/s")
    if args.out:
        with open(args.out, "w") as f:
            f.write("idx\tlabel\tpredict\tradius\tcorrect\ttime\n")
            for r in rows:
                f.write(f"{r[0]}\t{r[1]}\t{r[2]}\t{r[3]:.6f}\t{r[4]}\t{r[5]:.4f}\n")


if __name__ == "__main__":
    main()
