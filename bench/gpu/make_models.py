#!/usr/bin/env python3
"""Writes the two TorchScript classifiers of the GPU benchmarks (contract `classifier`:
forward(x [B, 3, H, W] in [0, 1]) -> [B, 10]), with seeded random weights (speed does not
depend on them), and a CIFAR-10-layout test batch for dualrs to certify:

  resnet110.pt   the CIFAR ResNet-110 of Cohen et al. (3 stages of 18 basic blocks, 16/32/64
                 channels, 32x32 input; 1.7 M parameters)
  vit_b16.pt     ViT-B/16 (patch 16, width 768, depth 12, 12 heads, MLP 3072; 224x224 input,
                 86 M parameters)
  cifar/         test_batch.bin with COUNT random images (and data_batch_1..5.bin, one each)

  python3 bench/gpu/make_models.py OUT_DIR [--count 20] [--device cuda]
"""
import argparse
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.short is None else self.short(x)))


class CifarResNet(nn.Module):
    def __init__(self, depth=110, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                blocks.append(BasicBlock(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)
        self.register_buffer("mean", torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1))

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class EncoderBlock(nn.Module):
    def __init__(self, width, heads, mlp):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp), nn.GELU(), nn.Linear(mlp, width))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, image=224, patch=16, width=768, depth=12, heads=12, mlp=3072, classes=10):
        super().__init__()
        self.embed = nn.Conv2d(3, width, patch, patch)
        tokens = (image // patch) ** 2
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, width) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(width, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x = self.embed(x * 2.0 - 1.0).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def write_cifar(folder, count, seed):
    os.makedirs(folder, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (count,), generator=g)
    pixels = torch.randint(0, 256, (count, 3072), generator=g, dtype=torch.uint8)
    with open(os.path.join(folder, "test_batch.bin"), "wb") as f:
        for i in range(count):
            f.write(bytes([int(labels[i])]) + pixels[i].numpy().tobytes())
    for k in range(1, 6):  # one training image each: the loader reads the full layout
        with open(os.path.join(folder, f"data_batch_{k}.bin"), "wb") as f:
            f.write(bytes([0]) + pixels[0].numpy().tobytes())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    for name, model, side in (("resnet110", CifarResNet(), 32), ("vit_b16", ViT(), 224)):
        model = model.eval().to(args.device)
        with torch.no_grad():
            traced = torch.jit.trace(model, torch.rand(2, 3, side, side, device=args.device))
        traced.save(os.path.join(args.out, name + ".pt"))
        print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters")
    write_cifar(os.path.join(args.out, "cifar"), args.count, 1)


if __name__ == "__main__":
    main()
