"""Wrapping and export of pretrained networks into TorchScript files that satisfy dualrs's
model contracts (data_schemas/models.md), independent of where the networks come from.

Only torch is needed here (Debian's python3-torch 1.13 is enough), so this logic is tested on
tiny stand-in modules (tests/integration/test_export_models.py); export_cifar10.py and
export_imagenet.py import the real networks and call it.

Contracts:
  epsilon         forward(x_t: float [B, C, H, W] in [-1, 1], t: float [B]) -> float [B, C, H, W]
                  (or [B, 2C, H, W] for learned-sigma models; these wrappers keep the first C).
                  t is the timestep the network was trained with: dualrs already passes
                  t*1000/T when /denoiser/rescale_timesteps is true (the default), so a wrapper
                  for dualrs's default leaves t alone (timestep_scale = 1).
  classifier      forward(x: float [B, C, H, W] pixels in [0, 1]) -> float [B, K] logits
  classifier-pm1  forward(x: float [B, C, H, W] in [-1, 1] (= 2 pixel - 1)) -> float [B, K]
Normalisation (mean/std) goes inside the exported module; the resize to the classifier's
input size does not (dualrs does it: /model/input_size).
"""
import os

import torch

CONTRACTS = ("epsilon", "classifier", "classifier-pm1")


class EpsilonModel(torch.nn.Module):
    """A diffusion network as contract `epsilon`.

    net(x_t, t) is called with t * timestep_scale (keep 1.0 with dualrs's default
    rescale_timesteps = true); with learned_sigma the network returns [B, 2C, H, W] (epsilon,
    then the variance interpolation) and only the first C channels are kept.
    """

    def __init__(self, net, channels, learned_sigma, timestep_scale=1.0):
        super().__init__()
        self.net = net
        self.channels = int(channels)
        self.learned_sigma = bool(learned_sigma)
        self.timestep_scale = float(timestep_scale)

    def forward(self, x_t, t):
        out = self.net(x_t, t * self.timestep_scale)
        if self.learned_sigma:
            out = out[:, : self.channels]
        return out.float()


class Classifier(torch.nn.Module):
    """A classifier as contract `classifier` (input_range "[0,1]") or `classifier-pm1`
    ("[-1,1]"): maps the input to pixels p in [0, 1], normalises (p - mean) / std inside the
    module, and returns logits (a tuple's first element, or an object's .logits, as Hugging
    Face models return them)."""

    def __init__(self, net, input_range, mean, std):
        super().__init__()
        if input_range not in ("[0,1]", "[-1,1]"):
            raise ValueError(f"input_range must be '[0,1]' or '[-1,1]', got {input_range!r}")
        self.net = net
        self.pm1 = input_range == "[-1,1]"
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        pixels = (x + 1) / 2 if self.pm1 else x
        out = self.net((pixels - self.mean) / self.std)
        if isinstance(out, (tuple, list)):
            out = out[0]
        elif hasattr(out, "logits"):
            out = out.logits
        return out.float()


def build_openai_unet(script_util, flags, checkpoint):
    """The UNet of OpenAI's improved-diffusion or guided-diffusion (both have
    script_util.model_and_diffusion_defaults / create_model_and_diffusion) with `flags` over
    the defaults and the released weights, in eval mode. The caller imports script_util."""
    args = script_util.model_and_diffusion_defaults()
    args.update(flags)
    model, _ = script_util.create_model_and_diffusion(**args)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    return model.eval()


def wrap_denoised_smoothing(unet, classifier_net):
    """The wrappers for Carlini et al.'s models, CIFAR-10 and ImageNet alike: a learned-sigma
    RGB UNet (6 output channels, the first 3 kept; t passed through, dualrs rescales it) as
    `epsilon`, and a classifier normalised with mean 0.5 / std 0.5 (ViT-B/16, BEiT-L) as
    `classifier-pm1`, where the [-1, 1] input passes through unchanged."""
    epsilon = EpsilonModel(unet, channels=3, learned_sigma=True, timestep_scale=1.0)
    classifier = Classifier(classifier_net, "[-1,1]", mean=[0.5] * 3, std=[0.5] * 3)
    return epsilon, classifier


def export(module, example_inputs, path):
    """Traces `module` (in eval mode) on `example_inputs` (a tuple) and saves it to `path`.
    Tracing records one path through Python control flow, so the result is checked by
    check_contract on other batch sizes afterwards. Returns the loaded file."""
    module = module.eval()
    with torch.no_grad():
        traced = torch.jit.trace(module, example_inputs, check_trace=False)
    traced.save(path)
    return torch.jit.load(path)


def contract_inputs(contract, input_shape, batch=3, seed=0):
    """Deterministic dummy inputs spanning the contract's range: the tensors forward takes."""
    g = torch.Generator().manual_seed(seed)
    c, h, w = input_shape
    low, high = (0.0, 1.0) if contract == "classifier" else (-1.0, 1.0)
    x = low + (high - low) * torch.rand(batch, c, h, w, generator=g)
    if contract == "epsilon":
        t = torch.linspace(1.0, 999.0, batch)
        return (x, t)
    return (x,)


def check_contract(path, contract, input_shape, num_classes=None, reference=None):
    """Loads `path` in eval mode, as dualrs does, and verifies `contract` on a dummy batch of 3
    (input_shape = (C, H, W)): output shape and dtype, finite values, and that row 0 does not
    depend on the rest of the batch. With `reference` (the eager module), the
    file must also reproduce it. Raises AssertionError naming the file; returns the outputs."""
    if contract not in CONTRACTS:
        raise ValueError(f"unknown contract {contract!r}; one of {CONTRACTS}")
    model = torch.jit.load(path).eval()
    inputs = contract_inputs(contract, input_shape)
    with torch.no_grad():
        out = model(*inputs)
        alone = model(*(v[:1] for v in inputs))
    c, h, w = input_shape
    if contract == "epsilon":
        ok = tuple(out.shape) in ((3, c, h, w), (3, 2 * c, h, w))
        want = f"[3, {c}, {h}, {w}] or [3, {2 * c}, {h}, {w}]"
    else:
        ok = out.dim() == 2 and out.shape[0] == 3 and (num_classes is None or out.shape[1] == num_classes)
        want = f"[3, {num_classes if num_classes is not None else 'K'}]"
    assert ok, f"{path}: contract {contract}: output shape {list(out.shape)}, expected {want}"
    assert out.dtype == torch.float32, f"{path}: contract {contract}: output dtype {out.dtype}, expected float32"
    assert torch.isfinite(out).all(), f"{path}: contract {contract}: non-finite outputs"
    assert torch.allclose(alone[0], out[0], rtol=1e-4, atol=1e-5), (
        f"{path}: contract {contract}: row 0 changes with the rest of the batch")
    if reference is not None:
        with torch.no_grad():
            want_out = reference.eval()(*inputs)
        assert torch.allclose(out, want_out, rtol=1e-4, atol=1e-5), (
            f"{path}: the exported file does not reproduce the eager module")
    return out


def export_denoised_pair(epsilon, classifier, eps_path, clf_path, denoiser_size, classifier_size, num_classes):
    """Traces, saves and checks the two models of denoised smoothing: the epsilon wrapper at
    denoiser_size px (the dataset's image size) and the classifier wrapper (contract
    classifier-pm1) at classifier_size px (its /model/input_size). Returns {contract: path}."""
    os.makedirs(os.path.dirname(os.path.abspath(eps_path)), exist_ok=True)
    eps_shape = (3, denoiser_size, denoiser_size)
    clf_shape = (3, classifier_size, classifier_size)
    export(epsilon, contract_inputs("epsilon", eps_shape, batch=2), eps_path)
    check_contract(eps_path, "epsilon", eps_shape, reference=epsilon)
    export(classifier, contract_inputs("classifier-pm1", clf_shape, batch=2), clf_path)
    check_contract(clf_path, "classifier-pm1", clf_shape, num_classes, reference=classifier)
    return {"epsilon": eps_path, "classifier-pm1": clf_path}
