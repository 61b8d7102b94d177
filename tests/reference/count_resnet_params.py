#!/usr/bin/env python3
"""Count the trainable parameters of dualrs' native ResNets, independently of the C++ code.

The architectures are written out here in plain PyTorch (torchvision is not a Debian
dependency of this project), following the standard definitions:

* CIFAR ResNet-(6n+2): He et al. 2016, section 4.2, in the form of Cohen et al.'s
  ``archs/cifar_resnet.py`` (itself from bearpaw/pytorch-classification): a 3x3 conv to 16
  channels, three stages of n basic blocks with 16/32/64 channels (stride 2 at the start of
  stages 2 and 3), global average pooling and a linear layer. Where a block changes the
  shape, the shortcut is a 1x1 conv (no bias) + batch norm projection (option B), not
  option A's zero padding.
* ResNet-50: torchvision's ``resnet50`` layout (v1.5, stride on the 3x3 conv of the
  bottleneck): 7x7/2 conv + BN + 3x3/2 max-pool, bottleneck stages [3, 4, 6, 3] with widths
  64/128/256/512 and expansion 4, 1x1 conv + BN projection on the first block of each stage,
  global average pooling, linear 2048 -> K. torchvision's resnet50 has 25,557,032
  parameters for K = 1000; the script asserts that.

Only trainable parameters are counted (batch-norm running statistics and the normalisation
constants are buffers). The normalisation layer has no parameters, so it is left out.

Usage, from the repository root, with Debian's python3-torch:

    /usr/bin/python3 tests/reference/count_resnet_params.py

It prints one line per (arch, num_classes): the parameter count and the number of
parameter tensors. tests/unit/model/resnet_test.cpp holds these numbers.
"""

import torch.nn as nn


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(conv1x1(cin, planes, stride), nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * 4)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != planes * 4:
            self.downsample = nn.Sequential(conv1x1(cin, planes * 4, stride), nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def make_stage(block, cin, planes, blocks, stride):
    layers = [block(cin, planes, stride)]
    cin = planes * block.expansion
    layers += [block(cin, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers), cin


class CifarResNet(nn.Module):
    def __init__(self, depth, num_classes):
        super().__init__()
        assert (depth - 2) % 6 == 0
        n = (depth - 2) // 6
        self.conv1 = conv3x3(3, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1, c = make_stage(BasicBlock, 16, 16, n, 1)
        self.layer2, c = make_stage(BasicBlock, c, 32, n, 2)
        self.layer3, c = make_stage(BasicBlock, c, 64, n, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


class ResNet50(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        c = 64
        self.layer1, c = make_stage(Bottleneck, c, 64, 3, 1)
        self.layer2, c = make_stage(Bottleneck, c, 128, 4, 2)
        self.layer3, c = make_stage(Bottleneck, c, 256, 6, 2)
        self.layer4, c = make_stage(Bottleneck, c, 512, 3, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def count(model):
    params = [p for p in model.parameters() if p.requires_grad]
    return sum(p.numel() for p in params), len(params)


def main():
    cases = [
        ("cifar_resnet20", 10, lambda: CifarResNet(20, 10)),
        ("cifar_resnet56", 10, lambda: CifarResNet(56, 10)),
        ("cifar_resnet110", 10, lambda: CifarResNet(110, 10)),
        ("cifar_resnet110", 4, lambda: CifarResNet(110, 4)),
        ("resnet50", 1000, lambda: ResNet50(1000)),
        ("resnet50", 10, lambda: ResNet50(10)),
    ]
    for arch, k, build in cases:
        total, tensors = count(build())
        if arch == "resnet50" and k == 1000:
            assert total == 25_557_032, total  # torchvision.models.resnet50().parameters()
        print(f"{arch} num_classes={k} params={total} tensors={tensors}")


if __name__ == "__main__":
    main()
