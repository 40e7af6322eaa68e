"""The flow stage: DIS flows, scene cuts, and the windows every model input is made of."""

import numpy as np
import pytest
import torch
from conftest import pan, small

from vsr._testclips import scene
from vsr.flow import Dis, gray8, is_cut, luma8, window_flows
from vsr.windows import options_for, still, windows


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
    with pytest.raises(ValueError, match="9 channels"):
        window_flows(x[:, :6])


def test_luma_from_integer_frames_is_the_float_frames_luma():
    f8 = scene(30, 40, 0)
    assert np.array_equal(luma8(f8), gray8(torch.from_numpy(f8).permute(2, 0, 1)[None].float() / 255)[0])
    f16 = f8.astype(np.uint16) * 257
    assert np.array_equal(luma8(f16), luma8(f8))


def test_windows_repeat_the_edges_and_carry_flows_and_resets():
    frames = pan(4)
    ws = list(windows(((f, i) for i, f in enumerate(frames)), size=3, flows=True))
    assert [w.meta for w in ws] == [0, 1, 2, 3]
    assert [w.reset for w in ws] == [True, False, False, False]
    for i, w in enumerate(ws):
        want = [frames[max(i - 1, 0)], frames[i], frames[min(i + 1, 3)]]
        assert all(a is b for a, b in zip(w.frames, want))
        assert w.flows.shape == (4, 40, 56) and w.flows.dtype == np.float32
    # the scene moves 1.5 px a frame to the left: t+1 holds p at p - 1.5 px, t-1 at p + 1.5 px
    assert abs(float(np.median(ws[1].flows[2, 8:-8, 8:-8])) + 1.5) < 0.3
    assert abs(float(np.median(ws[1].flows[0, 8:-8, 8:-8])) - 1.5) < 0.3
    assert [len(w.frames) for w in windows(((f, None) for f in frames), size=1)] == [1, 1, 1, 1]


def test_a_scene_cut_starts_the_state_over_and_keeps_the_shots_apart():
    shot1 = [scene(40, 56, t, seed=0) for t in range(3)]
    shot2 = [scene(40, 56, t, seed=7, speed=2.5) for t in range(3)]
    assert is_cut(luma8(shot1[-1]), luma8(shot1[-1])) is False
    assert not any(is_cut(luma8(shot1[i]), luma8(shot1[i + 1])) for i in range(2))
    assert is_cut(luma8(shot1[-1]), luma8(shot2[0]))
    ws = list(windows(((f, None) for f in shot1 + shot2), size=3, flows=True))
    assert [w.reset for w in ws] == [True, False, False, True, False, False]
    assert ws[2].frames[2] is shot1[2] and ws[3].frames[0] is shot2[0]  # neither shot sees the other
    off = list(windows(((f, None) for f in shot1 + shot2), size=3, cuts=False))
    assert [w.reset for w in off] == [True] + [False] * 5 and off[2].frames[2] is shot2[0]


def test_real_footage_cuts_are_found_and_motion_is_not(shared):
    """On the DAVIS clips: consecutive frames of the fastest clips are one shot, clip boundaries are cuts."""
    from vsr.formats import list_images
    from vsr.picture import read_rgb8

    def clip(name, n=8):
        return [luma8(read_rgb8(p)) for p in list_images(shared / "train_videos" / "davis" / name)[:n]]

    fast = clip("motocross-jump") + clip("drift-straight")
    assert sum(is_cut(fast[i], fast[i + 1]) for i in range(7)) == 0
    assert sum(is_cut(fast[8 + i], fast[9 + i]) for i in range(7)) == 0
    others = [clip(n, 1)[0] for n in ("camel", "cows", "dog", "goat", "parkour")]
    assert all(is_cut(fast[7], o) for o in others)


def test_a_still_is_a_window_that_does_not_move():
    model = small("mf-dis")
    w = still(pan(1)[0], model)
    assert len(w.frames) == 3 and w.reset and np.abs(w.flows).max() < 0.05
    opts = options_for(small("rvsr"))
    assert opts == {"size": 3, "flows": True, "dis": Dis(2, 5), "cuts": True, "temporal": None}
    assert options_for(small("sr-lite")) == {"size": 1, "flows": False, "dis": Dis(2, 5), "cuts": False,
                                             "temporal": None}


def test_spoil_flows():
    from train.sampler import spoil_flows

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
    """DIS at the frame's own pixels (finest scale 0, with or without variational refinement) finds a small moving
    object that the FAST preset's 1/4-size search smears into its background; a model's DIS settings
    (``dis_finest_scale``, ``dis_refine``) are stored with it and make its windows."""
    x = _moving_patch(3)
    c = slice(48 - 6, 48 + 6)  # the object's interior in the centre frame
    errors = {}
    for dis in (Dis(2, 5), Dis(0, 5), Dis(0, 0)):
        fl = window_flows(x, dis)[0, 2:4, c, c]  # centre → t+1: the object is 3 px to the right
        errors[dis] = (fl - torch.tensor([3.0, 0.0]).view(2, 1, 1)).norm(dim=0).median().item()
    fine = [errors[Dis(0, 5)], errors[Dis(0, 0)]]
    assert max(fine) < 0.25 and max(fine) < errors[Dis(2, 5)] / 2, errors

    from vsr.weightfile import WeightInfo, load_weights, save_weights

    built = small("mf-dis", dis_finest_scale=0, dis_refine=0)
    info = WeightInfo(name="mf-dis", arch=built.arch, hparams=built.hparams, scale=2, frames=3)
    model, _ = load_weights(save_weights(tmp_path / "w.safetensors", built, info))
    assert options_for(model)["dis"] == Dis(0, 0)
    frames = [(x[0, 3 * i : 3 * i + 3].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for i in range(3)]
    w = list(windows(((f, None) for f in frames), **options_for(model)))[1]
    assert np.allclose(w.flows, window_flows(x, Dis(0, 0))[0].numpy())
    assert not np.allclose(w.flows, window_flows(x, Dis(0, 5))[0].numpy())
