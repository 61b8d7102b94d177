#!/usr/bin/env python3
"""Writes a TorchScript classifier with mnist_cnn's architecture (contract `classifier`:
forward(x [B, 1, 28, 28] in [0, 1]) -> [B, 10]), for timing dualrs and the Cohen-style loop on
the very same file.

With --checkpoint, the weights come from a dualrs mnist_cnn checkpoint (train-base's
model.pt: LibTorch writes it as a TorchScript archive whose submodules conv1, conv2, fc1 and
fc2 hold `weight` and `bias`); without, from torch's default initialisation under --seed
(speed does not depend on the weights).
"""
import argparse

import torch
import torch.nn.functional as F


class MnistCnn(torch.nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = torch.nn.Linear(32 * 7 * 7, 128)
        self.fc2 = torch.nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - 0.1307) / 0.3081
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="TorchScript file to write")
    ap.add_argument("--checkpoint", default="", help="dualrs mnist_cnn checkpoint (model.pt)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    model = MnistCnn().eval()
    if args.checkpoint:
        archive = torch.jit.load(args.checkpoint, map_location="cpu")
        state = {}
        for layer in ("conv1", "conv2", "fc1", "fc2"):
            sub = getattr(archive, layer)
            state[layer + ".weight"] = sub.weight.detach().clone()
            state[layer + ".bias"] = sub.bias.detach().clone()
        model.load_state_dict(state)
    torch.jit.script(model).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
