"""Models given their flows (``flow="dis"``): the DIS flow, the model's use of it, every runner, training."""

import numpy as np
import pytest
import torch

from vsr.flow import window_flows, with_flows
from vsr.models import MODELS, in_channels_of
from vsr.testclips import scene


def _pan(sx: int, sy: int, size: int = 64) -> torch.Tensor:
    """A 3-frame window (1×9×size×size) of a camera pan: frame t+k is frame t moved by k·(sx, sy) pixels."""
    base = torch.from_numpy(scene(size + 32, size + 32, 0)).permute(2, 0, 1).float() / 255
    crops = [base[:, 16 - k * sy : 16 - k * sy + size, 16 - k * sx : 16 - k * sx + size] for k in (-1, 0, 1)]
    return torch.cat(crops, 0)[None]


def test_window_flows_follow_a_known_motion():
    x = _pan(2, -1)
    flows = window_flows(x)
    assert flows.shape == (1, 4, 64, 64) and flows.dtype == torch.float32
    inner = flows[..., 8:-8, 8:-8].median(-1).values.median(-1).values[0]
    # the centre pixel p is found at p + (sx, sy) in t+1 and at p - (sx, sy) in t-1 (flow_warp's convention)
    assert torch.allclose(inner, torch.tensor([-2.0, 1.0, 2.0, -1.0]), atol=0.1)
    assert with_flows(x).shape == (1, 13, 64, 64)
    with pytest.raises(ValueError, match="9 channels"):
        window_flows(x[:, :6])


def test_a_flow_input_model_aligns_with_the_flow_it_is_given():
    torch.manual_seed(0)
    model = MODELS["mf-dis"].build(2).eval()
    assert model.flow_input and in_channels_of(model) == 13 and model.size_multiple == 1
    assert not any(n.startswith("flow_") for n, _ in model.named_parameters())  # no learned aligner
    x = _pan(2, -1)
    with torch.no_grad():
        eager = model(x)  # a bare window: the model computes its flows
        given = model(with_flows(x))
        assert torch.equal(eager, given)
        _, flows = model.forward_with_flows(with_flows(x))
        assert torch.equal(torch.cat(flows, 1), window_flows(x))
        # moved by the right flow, the neighbours land on the centre: whole-pixel motion is an exact copy
        centre = x[:, 3:6]
        for i, fl in ((0, flows[0]), (2, flows[1])):
            moved, _ = model.align(x[:, 3 * i : 3 * i + 3], torch.round(fl))
            assert (moved - centre)[..., 8:-8, 8:-8].abs().mean() < 0.01
        # and a wrong flow changes the output
        wrong = with_flows(x)
        wrong[:, 9:] += 3.0
        assert not torch.allclose(model(wrong), given)


def test_the_confidence_input_is_the_aligned_neighbours_distance():
    """With confidence the head sees 2 more channels; they are zero where the neighbours are copies of the centre."""
    torch.manual_seed(0)
    plain = MODELS["mf-dis"].build(2, confidence=False).eval()
    conf = MODELS["mf-dis"].build(2).eval()
    assert conf.head[0].in_channels == plain.head[0].in_channels + 2
    still = _pan(0, 0)
    with torch.no_grad():
        seen = {}
        hook = conf.head.register_forward_pre_hook(lambda m, i: seen.update(x=i[0]))  # returns None: no change
        conf(still)
        hook.remove()
    assert seen["x"].shape[1] == 9 + 4 + 2 and not seen["x"][:, -2:].any()


def test_spoil_flows():
    from train.data import spoil_flows

    flows = torch.zeros(8, 4, 16, 16)
    rng = np.random.default_rng(0)
    assert torch.equal(spoil_flows(flows, rng, 0.0), flows)
    out = spoil_flows(flows, rng, 1.0)
    for b in range(8):
        spoilt = [(out[b, c : c + 2] != 0).any(0) for c in (0, 2)]
        assert sum(bool(s.any()) for s in spoilt) == 1  # one neighbour's flow
        region = spoilt[0] | spoilt[1]
        assert region.sum() >= 16  # a rectangle of at least a quarter of each side
        assert out[b].abs().max() <= 3.0
    assert not flows.any()  # the input is untouched


def test_openvino_and_torch_agree_on_a_flow_input_model():
    from engines.openvino_backend import OpenVINORunner
    from engines.torch_backend import TorchRunner

    torch.manual_seed(0)
    model = MODELS["mf-dis"].build(2, blocks=1, features=16).eval()
    x = _pan(1, 1, size=40)
    ov = OpenVINORunner(model, precision="fp32", weights_id="flow-input-test")
    assert ov.flow_input and ov.in_channels == 13
    ref, out = TorchRunner(model)(x), ov(x)  # a bare window: each runner appends the flows
    assert out.shape == ref.shape == (1, 3, 80, 80)
    assert (out - ref).abs().max() < 1e-3


def _moving_patch(dx: int, size: int = 96, patch: int = 20) -> torch.Tensor:
    """A still background with one textured square moving by k·dx pixels (k = -1, 0, 1): local, not camera, motion."""
    bg = scene(size, size, 0)
    fg = scene(patch, patch, 3)
    frames = []
    for k in (-1, 0, 1):
        f = bg.copy()
        y, x = size // 2 - patch // 2, size // 2 - patch // 2 + k * dx
        f[y : y + patch, x : x + patch] = fg
        frames.append(torch.from_numpy(f).permute(2, 0, 1).float() / 255)
    return torch.cat(frames, 0)[None]


def test_a_finer_dis_level_follows_local_motion_and_the_model_keeps_its_level(tmp_path):
    """DIS at the frame's own pixels (finest scale 0) finds a small moving object that the FAST preset's 1/4-size
    search smears into its background; a model's ``dis_finest_scale`` is stored with it and used by every runner."""
    x = _moving_patch(3)
    c = slice(48 - 6, 48 + 6)  # the object's interior in the centre frame
    errors = {}
    for level in (2, 0):
        fl = window_flows(x, level)[0, 2:4, c, c]  # centre → t+1: the object is 3 px to the right
        errors[level] = (fl - torch.tensor([3.0, 0.0]).view(2, 1, 1)).norm(dim=0).median().item()
    assert errors[0] < 0.25 and errors[0] < errors[2] / 2, errors

    from engines import create_runner
    from vsr.weights import WeightInfo, load_weights, save_weights

    torch.manual_seed(0)
    built = MODELS["mf-dis"].build(2, dis_finest_scale=0)
    info = WeightInfo(name="mf-dis", arch=built.arch, hparams=built.hparams, scale=2, frames=3)
    model, _ = load_weights(save_weights(tmp_path / "w.safetensors", built, info))
    assert model.dis_finest_scale == 0
    with torch.no_grad():
        _, flows = model.forward_with_flows(x)
    assert torch.equal(torch.cat(flows, 1), window_flows(x, 0))
    assert torch.equal(create_runner(model, backend="torch", precision="fp32").model_input(x), with_flows(x, 0))
    assert MODELS["mf-dis"].build(2).dis_finest_scale == 2  # weights saved before the option meant the preset
