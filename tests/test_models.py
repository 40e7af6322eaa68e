"""Every architecture builds, runs, saves and loads; the window/recurrent model's parts do what they say."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import small

from vsr.models import ARCHITECTURES, SCALES, build, run_window
from vsr.weightfile import WeightInfo, load_weights, save_weights

CASES = [(arch, s) for arch in ARCHITECTURES for s in SCALES]


@pytest.mark.parametrize("arch,scale", CASES, ids=[f"{a}-x{s}" for a, s in CASES])
def test_every_architecture(arch, scale, tmp_path):
    torch.manual_seed(0)
    model = build(arch, scale=scale).eval()
    assert model.scale == scale and model.arch == arch and model.hparams["scale"] == scale
    m = int(getattr(model, "size_multiple", 1))
    frames = int(getattr(model, "frames", 1))
    h, w = 2 * max(m, 4), 3 * max(m, 4)
    x = torch.rand(1, 3 * frames, h, w)
    with torch.no_grad():
        y1, y2 = run_window(model, x), run_window(model, x)
    assert y1.shape == (1, 3, h * scale, w * scale) and torch.isfinite(y1).all()
    assert torch.equal(y1, y2)  # deterministic
    path = save_weights(tmp_path / "m.safetensors", model, WeightInfo(arch, model.arch, model.hparams, scale, frames))
    loaded, info = load_weights(path)
    assert (info.arch, info.scale, info.frames) == (arch, scale, frames)
    with torch.no_grad():
        assert torch.equal(run_window(loaded, x), y1)


def test_unsupported_scale_and_arch():
    with pytest.raises(ValueError, match="scale"):
        build("edsr", scale=5)
    with pytest.raises(ValueError, match="unknown architecture"):
        build("nope", scale=2)


def test_bicubic_model_is_matlab_bicubic(natural_rgb):
    from vsr.resize import imresize

    x = torch.from_numpy(natural_rgb).permute(2, 0, 1)[None].double() / 255
    y = build("bicubic", scale=3).double()(x)[0].permute(1, 2, 0).numpy()
    ref = imresize(natural_rgb.astype(np.float64) / 255, 3.0)
    assert np.abs(y - ref).max() < 1e-6


def test_window_moves_neighbours_by_whole_pixels_and_sees_the_remainder():
    """t-1 and t+1 move by round(flow) (an exact copy: their samples reach the network unfiltered); the
    remainder and each aligned neighbour's distance from t are inputs of the head."""
    model = small("mf-dis")
    base = torch.rand(1, 3, 16, 20)
    x = torch.cat([torch.roll(base, -1, 3), base, torch.roll(base, 2, 2)], 1)  # t-1 shifted left, t+1 down
    flows = torch.zeros(1, 4, 16, 20)
    flows[:, 0] = -1.3  # centre pixel p is at p - 1.3 px (x) in t-1
    flows[:, 3] = 2.2  # and at p + 2.2 px (y) in t+1
    seen = {}
    hook = model.head.register_forward_pre_hook(lambda m, i: seen.update(x=i[0]))
    with torch.no_grad():
        model(x, flows)
    hook.remove()
    h = seen["x"][0]
    assert h.shape[0] == 9 + 4 + 2
    inner = (slice(3, -3), slice(3, -3))
    assert torch.allclose(h[0:3][(slice(None), *inner)], base[0][(slice(None), *inner)], atol=1e-4)  # t-1 aligned exactly
    assert torch.allclose(h[6:9][(slice(None), *inner)], base[0][(slice(None), *inner)], atol=1e-4)  # t+1 too
    assert torch.allclose(h[9], torch.full((16, 20), -0.3), atol=1e-6) and torch.allclose(h[12], torch.full((16, 20), 0.2), atol=1e-5)
    assert h[13][inner].abs().max() < 1e-4 and h[14][inner].abs().max() < 1e-4  # aligned neighbours = the centre


def test_the_recurrent_state_carries_what_earlier_frames_saw():
    """Frame 2's output depends on frame 0 only through the state; a zero state is a clip's first frame."""
    model = small("rvsr")
    assert model.state_channels == 16 and model.flow_channels == 4
    frames = [torch.rand(1, 3, 12, 16) for _ in range(4)]
    flows = torch.zeros(1, 4, 12, 16)

    def run(fs):
        state, outs = torch.zeros(1, 16, 12, 16), []
        for t in range(1, 3):
            y, state = model(torch.cat(fs[t - 1 : t + 2], 1), flows, state)
            outs.append(y)
        return outs

    with torch.no_grad():
        a = run(frames)
        b = run([torch.rand(1, 3, 12, 16), *frames[1:]])
        assert not torch.allclose(a[1], b[1])  # frame 0 reached frame 2 through the state
        first, _ = model(torch.cat(frames[0:3], 1), flows, torch.zeros(1, 16, 12, 16))
        assert torch.equal(first, a[0])
        from vsr.flow import window_flows

        x = torch.cat(frames[0:3], 1)  # eager use: the window's own flows, zero state
        assert torch.equal(run_window(model, x), model(x, window_flows(x), torch.zeros(1, 16, 12, 16))[0])


def test_the_state_is_moved_onto_the_current_frame_to_the_sub_pixel():
    """Half an LR pixel of motion moves the fed-back output by s/2 output pixels (rounding the flow would not move
    it at all) and the features by half a pixel."""
    s = 4
    model = small("rvsr", scale=s, feedback=True)
    torch.manual_seed(0)
    features = model.state_channels - 3 * s * s
    previous_hr, feats = torch.rand(1, 3, 12 * s, 16 * s), torch.rand(1, features, 12, 16)
    state = torch.cat([feats, F.pixel_unshuffle(previous_hr, s)], 1)
    back = torch.zeros(1, 2, 12, 16)
    back[:, 0] = 0.5  # what is at x in t was at x + 0.5 in t-1
    with torch.no_grad():
        aligned = model._align_state(state, back)
    moved_hr = F.pixel_shuffle(aligned[:, features:], s)
    # sampling t-1 at x + 2 output pixels: output column x is input column x + 2 (borders repeated)
    torch.testing.assert_close(moved_hr[..., :-2], previous_hr[..., 2:])
    moved = aligned[:, :features]
    torch.testing.assert_close(moved[..., :-1], (feats[..., :-1] + feats[..., 1:]) / 2)


def test_mf_fast_uses_its_neighbours():
    """Changing t-1 changes the output (alignment + fusion are wired in)."""
    model = small("mf-fast")
    for head in (model.flow_coarse, model.flow_fine):  # give the zero-initialised flow heads an output
        for p in head[-1].parameters():
            torch.nn.init.normal_(p, std=0.1)
    x = torch.rand(1, 9, 16, 16)
    x2 = x.clone()
    x2[:, :3] = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x2))
