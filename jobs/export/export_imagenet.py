#!/usr/bin/env python3
"""Exports Carlini et al.'s ImageNet denoised-smoothing models ("(Certified!!) Adversarial
Robustness for Free!", ICLR 2023) to TorchScript files for dualrs.

  UNet  guided-diffusion `256x256_diffusion_uncond.pt` (Dhariwal & Nichol 2021): linear
        schedule, T = 1000, learned sigma (6 output channels) -> contract `epsilon` (first 3
        channels kept; t passed as is). As in the reference pipeline it runs on the 224 px
        centre crops (dataset resize 256, crop 224), so it is traced and checked at 224 px.
  BEiT  timm `beit_large_patch16_512` (BEiT-L/16 at 512 px, ImageNet-1k fine-tuned,
        normalised with mean 0.5 / std 0.5) -> contract `classifier-pm1`; dualrs resizes the
        denoised crop to 512 (bicubic, antialiased) before it: /model/input_size 512.

Needs (none of them is on the development machine; only the wrapping in dualrs_export.py is
tested there, with Debian's python3-torch 1.13):
  - PyTorch >= 1.13 (export on the LibTorch version dualrs links, or older);
  - guided-diffusion: `pip install -e .` in a clone of https://github.com/openai/guided-diffusion,
    and the checkpoint 256x256_diffusion_uncond.pt linked from its README;
  - timm (`pip install timm`; the BEiT-L weights download on first use, or pass
    --beit-checkpoint).
  Tracing BEiT-L at 512 px and checking it takes a few minutes and about 8 GB of memory on a CPU.

    python3 jobs/export/export_imagenet.py --unet 256x256_diffusion_uncond.pt --out models/imagenet

Writes OUT/imagenet_epsilon.pt and OUT/imagenet_beit_l.pt, checks both contracts on the
loaded files against the eager modules, and prints the matching config sections
(configs/imagenet_dual.json expects these file names).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dualrs_export  # noqa: E402

# guided-diffusion flags of 256x256_diffusion_uncond (its README, "ImageNet 256x256 uncond").
UNET_FLAGS = dict(attention_resolutions="32,16,8", class_cond=False, diffusion_steps=1000, image_size=256,
                  learn_sigma=True, noise_schedule="linear", num_channels=256, num_head_channels=64,
                  num_res_blocks=2, resblock_updown=True, use_fp16=False, use_scale_shift_norm=True)
CROP_SIZE = 224
BEIT_NAME = "beit_large_patch16_512"
BEIT_SIZE = 512
NUM_CLASSES = 1000
# The file names the shipped configs expect under models/imagenet/ (configs/README.md).
EPSILON_FILE = "imagenet_epsilon.pt"
CLASSIFIER_FILE = "imagenet_beit_l.pt"


def load_unet(checkpoint):
    """The guided-diffusion UNet with the released weights (imports guided_diffusion)."""
    from guided_diffusion import script_util
    return dualrs_export.build_openai_unet(script_util, UNET_FLAGS, checkpoint)


def load_beit(checkpoint=None):
    """timm's BEiT-L/16 at 512 px (imports timm)."""
    import timm
    return timm.create_model(BEIT_NAME, pretrained=checkpoint is None, checkpoint_path=checkpoint or "").eval()


def export_all(unet, beit, out_dir, crop_size=CROP_SIZE, beit_size=BEIT_SIZE, num_classes=NUM_CLASSES):
    """Wraps, traces, saves and checks both models; returns {contract name: path}."""
    epsilon, classifier = dualrs_export.wrap_denoised_smoothing(unet, beit)
    return dualrs_export.export_denoised_pair(epsilon, classifier, os.path.join(out_dir, EPSILON_FILE),
                                              os.path.join(out_dir, CLASSIFIER_FILE), crop_size, beit_size, num_classes)


def config_sections(paths):
    return {
        "denoiser": {"torchscript": paths["epsilon"], "schedule": "linear", "steps": 1000},
        "model": {"torchscript": paths["classifier-pm1"], "num_classes": NUM_CLASSES, "input_range": "[-1,1]",
                  "input_size": BEIT_SIZE},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unet", required=True, help="256x256_diffusion_uncond.pt")
    parser.add_argument("--beit-checkpoint", help="local BEiT-L/16 512 weights (default: timm downloads them)")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args()
    paths = export_all(load_unet(args.unet), load_beit(args.beit_checkpoint), args.out)
    print(json.dumps(config_sections(paths), indent=2))


if __name__ == "__main__":
    main()
