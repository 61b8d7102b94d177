"""The export scripts' wrapping logic (jobs/export/), on tiny stand-ins for the real networks:
the exported TorchScript files load and satisfy dualrs's contracts (data_schemas/models.md):
shapes, ranges, learned-sigma channels, timestep handling, normalisation inside the model."""
import math
import os
import sys
import tempfile
import types
import unittest

import torch

from dualrs_testlib import SOURCE, read_json

sys.path.insert(0, os.path.join(SOURCE, "jobs", "export"))
import dualrs_export  # noqa: E402
import export_cifar10  # noqa: E402
import export_imagenet  # noqa: E402


class StandInUNet(torch.nn.Module):
    """Shaped like improved-/guided-diffusion's UNet: forward(x, timesteps) -> [B, 2C, H, W]
    with a sinusoidal timestep embedding, shape-dependent attention reshapes and dropout."""

    def __init__(self, channels=3, learned_sigma=True):
        super().__init__()
        out = channels * (2 if learned_sigma else 1)
        self.conv = torch.nn.Conv2d(channels, out, 3, padding=1)
        self.emb = torch.nn.Linear(16, out)
        self.dropout = torch.nn.Dropout(0.3)

    def forward(self, x, timesteps):
        freqs = torch.exp(-math.log(10000.0) * torch.arange(8, dtype=torch.float32) / 8)
        args = timesteps[:, None].float() * freqs[None]
        h = self.conv(x) + self.emb(torch.cat([torch.cos(args), torch.sin(args)], 1))[:, :, None, None]
        b, c, height, width = h.shape
        flat = h.reshape(b, c, -1)
        weights = torch.softmax(flat.transpose(1, 2) @ flat / math.sqrt(c), dim=-1)
        h = h + 0.1 * (flat @ weights.transpose(1, 2)).reshape(b, c, height, width)
        return self.dropout(h)


class Logits:
    def __init__(self, logits):
        self.logits = logits


class StandInViT(torch.nn.Module):
    """Patch embedding + pooling + head, returning an object with .logits like Hugging Face."""

    def __init__(self, num_classes=10, patch=8):
        super().__init__()
        self.patch = torch.nn.Conv2d(3, 16, patch, stride=patch)
        self.head = torch.nn.Linear(16, num_classes)
        self.dropout = torch.nn.Dropout(0.5)

    def forward(self, pixel_values):
        return Logits(self.head(self.dropout(self.patch(pixel_values).mean(dim=(2, 3)))))


class TupleNet(torch.nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.head = torch.nn.Linear(3, num_classes)

    def forward(self, x):
        return (self.head(x.mean(dim=(2, 3))), x)


def seeded(module):
    torch.manual_seed(0)
    return module


class ExportTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="dualrs_export_")
        torch.manual_seed(0)

    def tearDown(self):
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_cifar10_export_satisfies_the_contracts(self):
        unet, vit = StandInUNet().eval(), StandInViT().eval()
        paths = export_cifar10.export_all(unet, vit, self.tmp, vit_size=32)
        eps = torch.jit.load(paths["epsilon"])
        x = torch.rand(5, 3, 32, 32) * 2 - 1  # another batch size than the trace's 2
        t = torch.tensor([1.0, 250.0, 500.0, 750.0, 999.0])
        with torch.no_grad():
            out = eps(x, t)
            full = unet(x, t)
        # Learned sigma: 6 channels in, the first 3 (epsilon) out; t reaches the net unchanged
        # (dualrs passes t*1000/T already).
        self.assertEqual(tuple(out.shape), (5, 3, 32, 32))
        self.assertEqual(out.dtype, torch.float32)
        torch.testing.assert_close(out, full[:, :3])
        with torch.no_grad():
            self.assertFalse(torch.allclose(eps(x, t), eps(x, t.flip(0))))
            self.assertTrue(torch.equal(eps(x, t), eps(x, t)))  # dropout off
        clf = torch.jit.load(paths["classifier-pm1"])
        xs = torch.rand(4, 3, 32, 32) * 2 - 1
        with torch.no_grad():
            logits = clf(xs)
            # mean = std = 0.5 inside: [-1, 1] input reaches the network unchanged.
            torch.testing.assert_close(logits, vit(xs).logits, rtol=1e-5, atol=1e-6)
        self.assertEqual(tuple(logits.shape), (4, 10))
        sections = export_cifar10.config_sections(paths)
        self.assertEqual(sections["denoiser"]["schedule"], "cosine")
        self.assertEqual(sections["denoiser"]["steps"], 4000)
        self.assertEqual(sections["model"]["input_range"], "[-1,1]")

    def test_imagenet_export_satisfies_the_contracts(self):
        unet, beit = StandInUNet().eval(), StandInViT(num_classes=1000, patch=16).eval()
        paths = export_imagenet.export_all(unet, beit, self.tmp, crop_size=24, beit_size=32)
        out = dualrs_export.check_contract(paths["epsilon"], "epsilon", (3, 24, 24),
                                           reference=dualrs_export.wrap_denoised_smoothing(unet, beit)[0])
        self.assertEqual(tuple(out.shape), (3, 3, 24, 24))
        logits = dualrs_export.check_contract(paths["classifier-pm1"], "classifier-pm1", (3, 32, 32), 1000)
        self.assertEqual(tuple(logits.shape), (3, 1000))
        self.assertEqual(export_imagenet.config_sections(paths)["denoiser"], {
            "torchscript": paths["epsilon"], "schedule": "linear", "steps": 1000})

    def test_shipped_paper_configs_name_the_exported_files_and_sections(self):
        # The paper configs' /denoiser and /model are what the export scripts print for the files
        # they write into the placeholder folders of configs/README.md (plus device cuda).
        for script, config, folder in ((export_cifar10, "cifar10_dual.json", "cifar10"),
                                       (export_imagenet, "imagenet_dual.json", "imagenet"),
                                       (export_imagenet, "imagenet_labels.json", "imagenet")):
            cfg = read_json(os.path.join(SOURCE, "configs", config))
            expected = script.config_sections({
                "epsilon": os.path.join("..", "models", folder, script.EPSILON_FILE),
                "classifier-pm1": os.path.join("..", "models", folder, script.CLASSIFIER_FILE)})
            for section in ("denoiser", "model"):
                self.assertEqual(cfg[section].pop("device"), "cuda", (config, section))
                self.assertEqual(cfg[section], expected[section], (config, section))
        # The ImageNet epsilon-model is traced and checked on the dataset's centre crops.
        self.assertEqual(read_json(os.path.join(SOURCE, "configs", "imagenet_dual.json"))["dataset"]["crop"],
                         export_imagenet.CROP_SIZE)

    def test_openai_unet_builder_applies_the_flags_and_loads_the_weights(self):
        made = {}

        def create_model_and_diffusion(**args):
            made.update(args)
            return StandInUNet(learned_sigma=args["learn_sigma"]), "diffusion"

        script_util = types.SimpleNamespace(
            model_and_diffusion_defaults=lambda: {"image_size": 64, "learn_sigma": False, "dropout": 0.0},
            create_model_and_diffusion=create_model_and_diffusion)
        weights = StandInUNet(learned_sigma=True).state_dict()
        checkpoint = os.path.join(self.tmp, "unet.pt")
        torch.save(weights, checkpoint)
        unet = dualrs_export.build_openai_unet(script_util, export_cifar10.UNET_FLAGS, checkpoint)
        self.assertEqual(made["image_size"], 32)
        self.assertEqual(made["diffusion_steps"], 4000)
        self.assertEqual(made["noise_schedule"], "cosine")
        self.assertTrue(made["learn_sigma"])
        self.assertFalse(unet.training)
        torch.testing.assert_close(unet.conv.weight, weights["conv.weight"])

    def test_timestep_scale_and_plain_epsilon_output(self):
        unet = StandInUNet(learned_sigma=False).eval()
        wrapped = dualrs_export.EpsilonModel(unet, channels=3, learned_sigma=False, timestep_scale=0.25)
        path = os.path.join(self.tmp, "eps.pt")
        loaded = dualrs_export.export(wrapped, dualrs_export.contract_inputs("epsilon", (3, 8, 8), batch=2), path)
        x, t = dualrs_export.contract_inputs("epsilon", (3, 8, 8), batch=3)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x, t), unet(x, t * 0.25))
        self.assertEqual(tuple(dualrs_export.check_contract(path, "epsilon", (3, 8, 8)).shape), (3, 3, 8, 8))

    def test_classifier_normalises_inside_for_pixel_inputs(self):
        net = TupleNet(5).eval()
        mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
        wrapped = dualrs_export.Classifier(net, "[0,1]", mean, std)
        path = os.path.join(self.tmp, "clf.pt")
        loaded = dualrs_export.export(wrapped, dualrs_export.contract_inputs("classifier", (3, 6, 6), batch=2), path)
        x = torch.rand(3, 3, 6, 6)
        want = net((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))[0]
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), want)
        dualrs_export.check_contract(path, "classifier", (3, 6, 6), 5, reference=wrapped)
        with self.assertRaises(ValueError):
            dualrs_export.Classifier(net, "[0,255]", mean, std)

    def test_contract_violations_name_the_file(self):
        class BadShape(torch.nn.Module):
            def forward(self, x):
                return x.mean(dim=(2, 3)).unsqueeze(2)

        class MixesTheBatch(torch.nn.Module):
            def forward(self, x):
                return (x - x.mean(dim=0, keepdim=True)).mean(dim=(2, 3))

        bad = os.path.join(self.tmp, "bad.pt")
        torch.jit.script(BadShape()).save(bad)
        with self.assertRaisesRegex(AssertionError, "bad.pt.*output shape"):
            dualrs_export.check_contract(bad, "classifier", (3, 4, 4), 3)
        mixed = os.path.join(self.tmp, "mixed.pt")
        torch.jit.script(MixesTheBatch()).save(mixed)
        with self.assertRaisesRegex(AssertionError, "mixed.pt.*rest of the batch"):
            dualrs_export.check_contract(mixed, "classifier", (3, 4, 4), 3)
        with self.assertRaisesRegex(AssertionError, "bad.pt"):
            dualrs_export.check_contract(bad, "classifier", (3, 4, 4), 7)


if __name__ == "__main__":
    unittest.main()
