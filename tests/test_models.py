import pytest
import torch

from vsr.models import MODELS, build
from vsr.weights import WeightInfo, load_weights, save_weights

CASES = [(name, s) for name, spec in MODELS.items() for s in spec.scales]


@pytest.mark.parametrize("name,scale", CASES, ids=[f"{n}-x{s}" for n, s in CASES])
def test_every_registered_model(name, scale, tmp_path):
    spec = MODELS[name]
    torch.manual_seed(0)
    model = spec.build(scale).eval()
    assert model.scale == scale and getattr(model, "frames", 1) == spec.frames
    assert getattr(model, "size_multiple", 1) == spec.size_multiple
    h, w = 2 * max(spec.size_multiple, 4), 3 * max(spec.size_multiple, 4)
    x = torch.rand(1, 3 * spec.frames, h, w)
    with torch.no_grad():
        y1, y2 = model(x), model(x)
    assert y1.shape == (1, 3, h * scale, w * scale)
    assert torch.isfinite(y1).all()
    assert torch.equal(y1, y2)  # deterministic
    path = save_weights(tmp_path / "m.safetensors", model, WeightInfo(name, model.arch, model.hparams, scale, spec.frames))
    loaded, info = load_weights(path)
    assert (info.arch, info.scale, info.frames) == (model.arch, scale, spec.frames)
    with torch.no_grad():
        assert torch.equal(loaded(x), y1)


def test_unsupported_scale_and_arch():
    with pytest.raises(ValueError, match="scales"):
        MODELS["edsr"].build(5)
    with pytest.raises(ValueError, match="unknown architecture"):
        build("nope", scale=2)


def test_bicubic_model_is_matlab_bicubic(natural_rgb):
    import numpy as np

    from vsr.resize import imresize

    x = torch.from_numpy(natural_rgb).permute(2, 0, 1)[None].double() / 255
    y = MODELS["bicubic"].build(3).double()(x)[0].permute(1, 2, 0).numpy()
    ref = imresize(natural_rgb.astype(np.float64) / 255, 3.0)
    assert np.abs(y - ref).max() < 1e-6


def test_phase_alignment_moves_by_whole_pixels():
    """``phase``: the neighbour moves by round(flow) (an exact copy), the remainder is an input, and in training
    the flow still gets a gradient (bilinear straight-through)."""
    model = MODELS["mf-fast"].build(2, phase=True)
    frame = torch.rand(1, 3, 8, 8)
    flow = torch.zeros(1, 2, 8, 8)
    flow[:, 0] = 1.3  # 1.3 px to the right
    flow.requires_grad_(True)
    model.eval()
    moved, offset = model._whole_pixel_warp(frame, flow)
    assert torch.allclose(moved[..., :-1], frame[..., 1:], atol=1e-6)  # sampled one pixel to the right
    assert torch.allclose(offset[:, 0], torch.full((1, 8, 8), 0.3), atol=1e-6) and not offset[:, 1].any()
    model.train()
    moved, _ = model._whole_pixel_warp(frame, flow)
    assert torch.allclose(moved[..., :-1], frame[..., 1:], atol=1e-6)
    moved.sum().backward()
    assert flow.grad is not None and flow.grad.abs().sum() > 0


def test_refine_starts_from_the_coarse_flow_and_then_corrects_it():
    """``refine``: a last flow step at full LR resolution, zero-initialised (the flow starts as without it)."""
    torch.manual_seed(0)
    plain = MODELS["mf-fast"].build(2).eval()
    refined = MODELS["mf-fast"].build(2, refine=True).eval()
    refined.load_state_dict(plain.state_dict(), strict=False)
    x = torch.rand(1, 9, 16, 16)
    with torch.no_grad():
        assert torch.equal(plain.forward_with_flows(x)[1][0], refined.forward_with_flows(x)[1][0])
        torch.nn.init.normal_(refined.flow_refine[-1].weight, std=0.1)
        assert not torch.allclose(plain.forward_with_flows(x)[1][0], refined.forward_with_flows(x)[1][0])


def test_multiframe_model_uses_its_neighbours():
    """Changing t-1 changes the output (alignment + fusion are wired in)."""
    torch.manual_seed(0)
    model = MODELS["mf-fast"].build(2).eval()
    for head in (model.flow_coarse, model.flow_fine):  # give the zero-initialised flow heads an output
        for p in head[-1].parameters():
            torch.nn.init.normal_(p, std=0.1)
    x = torch.rand(1, 9, 16, 16)
    x2 = x.clone()
    x2[:, :3] = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x2))
