#!/usr/bin/env python3
"""Exports Carlini et al.'s CIFAR-10 denoised-smoothing models ("(Certified!!) Adversarial
Robustness for Free!", ICLR 2023) to TorchScript files for dualrs.

  UNet  improved-diffusion `cifar10_uncond_50M_500K.pt` (Nichol & Dhariwal 2021): cosine
        schedule, T = 4000, learned sigma (6 output channels) -> contract `epsilon`
        (first 3 channels kept; t passed through: dualrs rescales t*1000/T itself).
  ViT   ViT-B/16 at 224 px fine-tuned on CIFAR-10, normalised with mean 0.5 / std 0.5 (the
        Hugging Face model `aaraki/vit-base-patch16-224-in21k-finetuned-cifar10` Carlini et al.
        use, or a timm ViT-B/16 checkpoint) -> contract `classifier-pm1`; dualrs resizes the
        denoised 32 px image to 224 (bicubic, antialiased) before it: /model/input_size 224.

Needs (none of them is on the development machine; only the wrapping in dualrs_export.py is
tested there, with Debian's python3-torch 1.13):
  - PyTorch >= 1.13 (CPU is enough; export on the LibTorch version dualrs links, or older);
  - improved-diffusion: `pip install -e .` in a clone of https://github.com/openai/improved-diffusion,
    and the checkpoint cifar10_uncond_50M_500K.pt linked from its README;
  - for --vit-source hf: `pip install transformers` (the model downloads on first use or
    loads from a local folder); for --vit-source timm: `pip install timm` and a checkpoint.

    python3 jobs/export/export_cifar10.py --unet cifar10_uncond_50M_500K.pt \\
        --vit aaraki/vit-base-patch16-224-in21k-finetuned-cifar10 --out models/cifar10

Writes OUT/cifar10_epsilon.pt and OUT/cifar10_vit_b16.pt, checks both contracts on the loaded
files against the eager modules, and prints the matching config sections
(configs/cifar10_dual.json expects these file names).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dualrs_export  # noqa: E402

# improved-diffusion flags of cifar10_uncond_50M_500K (its README, "CIFAR-10").
UNET_FLAGS = dict(image_size=32, num_channels=128, num_res_blocks=3, learn_sigma=True, dropout=0.3,
                  diffusion_steps=4000, noise_schedule="cosine")
IMAGE_SIZE = 32
VIT_SIZE = 224
NUM_CLASSES = 10
# The file names the shipped configs expect under models/cifar10/ (configs/README.md).
EPSILON_FILE = "cifar10_epsilon.pt"
CLASSIFIER_FILE = "cifar10_vit_b16.pt"


def load_unet(checkpoint):
    """The improved-diffusion UNet with the released weights (imports improved_diffusion)."""
    from improved_diffusion import script_util
    return dualrs_export.build_openai_unet(script_util, UNET_FLAGS, checkpoint)


def load_vit(name, source, checkpoint=None):
    """ViT-B/16 for CIFAR-10 from Hugging Face (returns a tuple with torchscript=True) or timm."""
    if source == "hf":
        from transformers import ViTForImageClassification
        return ViTForImageClassification.from_pretrained(name, torchscript=True).eval()
    import timm
    return timm.create_model(name, pretrained=checkpoint is None, num_classes=NUM_CLASSES,
                             checkpoint_path=checkpoint or "").eval()


def export_all(unet, vit, out_dir, image_size=IMAGE_SIZE, vit_size=VIT_SIZE, num_classes=NUM_CLASSES):
    """Wraps, traces, saves and checks both models; returns {contract name: path}."""
    epsilon, classifier = dualrs_export.wrap_denoised_smoothing(unet, vit)
    return dualrs_export.export_denoised_pair(epsilon, classifier, os.path.join(out_dir, EPSILON_FILE),
                                              os.path.join(out_dir, CLASSIFIER_FILE), image_size, vit_size, num_classes)


def config_sections(paths):
    return {
        "denoiser": {"torchscript": paths["epsilon"], "schedule": "cosine", "steps": 4000, "rescale_timesteps": True},
        "model": {"torchscript": paths["classifier-pm1"], "num_classes": NUM_CLASSES, "input_range": "[-1,1]",
                  "input_size": VIT_SIZE},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unet", required=True, help="cifar10_uncond_50M_500K.pt")
    parser.add_argument("--vit", default="aaraki/vit-base-patch16-224-in21k-finetuned-cifar10",
                        help="Hugging Face model name or folder (--vit-source hf), or timm model name")
    parser.add_argument("--vit-source", choices=["hf", "timm"], default="hf")
    parser.add_argument("--vit-checkpoint", help="timm: fine-tuned CIFAR-10 weights")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args()
    paths = export_all(load_unet(args.unet), load_vit(args.vit, args.vit_source, args.vit_checkpoint), args.out)
    print(json.dumps(config_sections(paths), indent=2))


if __name__ == "__main__":
    main()
