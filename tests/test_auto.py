"""-m auto (vsr.auto): compressed or noisy input gets the real-footage model, clean input the clean one, decided from
the file and said in one line; the default of vsr upscale, refused where there is no video to decide from. What the
choice scores on the held-out clips, and its time on a 4K file, are benchmarks (benchmarks/auto.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import Collect

from vsr._testclips import make_clip, scene
from vsr.auto import CLEAN, REAL, RULES, Signals, classify, decide, decide_from

ROOT = Path(__file__).resolve().parents[1]


def _noisy(path: Path, sigma: float, crf: int, codec: str = "libx264") -> Path:
    from vsr.video.recompress import encode

    rng = np.random.default_rng(0)
    frames = [np.clip(scene(192, 320, t) + rng.normal(0, sigma, (192, 320, 3)), 0, 255).astype(np.uint8)
              for t in range(12)]
    encode(frames, path, codec=codec, crf=crf, format="mp4", preset="ultrafast")
    return path


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_a_clip_is_classified_by_its_compression_and_noise(tmp_path, codec):
    """A very high CRF is compressed, noise kept by a low CRF is noisy; H.264 (by its quantiser) at a very low CRF
    is clean. HEVC exposes no quantiser: its bits per pixel speak for it, and training put any lossy file below
    about 1.4 of them (H.264's) among the compressed: a synthetic scene at CRF 2 is, at 0.3."""
    kw = {"width": 320, "height": 192, "frames": 12, "audio": False, "codec": codec}
    fine, coarse = make_clip(tmp_path / "fine.mp4", crf=2, **kw), make_clip(tmp_path / "coarse.mp4", crf=45, **kw)
    noisy = _noisy(tmp_path / "noisy.mp4", 12, 10, codec)
    for scale in sorted(RULES):
        a, b, c = decide(fine, scale), decide(coarse, scale), decide(noisy, scale)
        assert (b.kind, c.kind) == ("compressed", "noisy"), (b.line, c.line)
        assert (b.model, c.model) == (REAL, REAL) and c.signals.noise > 4 * a.signals.noise
        assert (a.signals.qp is not None) == (codec == "libx264") == ("QP" in a.why)
        if codec == "libx264":
            assert a.kind == "clean" and a.model == (CLEAN if RULES[scale].clean else REAL), a.line
        else:
            assert "bits/pixel hevc" in a.why and a.signals.bpp > 10 * b.signals.bpp


@pytest.mark.parametrize("scale", sorted(RULES))
def test_the_rule_reads_what_the_source_has(scale):
    """A lossless codec is never compressed; H.264's quantiser decides over bits per pixel; without a quantiser
    few bits per pixel make it compressed; blocks or noise do whatever the codec; where the scale's rule says the
    real-footage model serves clean input as well, clean input gets it too (said)."""
    rule = dataclasses.replace(RULES[scale], clean=True)
    clean = {"codec": "hevc", "bpp": 4.0, "blockiness": 1.0, "noise": 0.0}
    assert not classify(Signals(**clean), rule)[0]
    assert classify(Signals(**{**clean, "bpp": rule.bpp / 2}), rule)[0]
    assert classify(Signals(**{**clean, "blockiness": rule.blocky + 0.1}), rule)[0]
    assert classify(Signals(**{**clean, "noise": rule.noisy + 0.5}), rule)[1].startswith("noisy")
    assert not classify(Signals(codec="ffv1", bpp=rule.bpp / 2), rule)[0]
    assert classify(Signals(codec="ffv1", blockiness=rule.blocky + 0.1), rule)[0]
    h264 = Signals(codec="h264", bpp=rule.bpp / 2, qp=rule.qp - 5)
    assert not classify(h264, rule)[0] and classify(h264, rule, use_qp=False)[0]
    assert classify(Signals(codec="h264", bpp=5.0, qp=rule.qp + 1), rule)[0]
    assert not classify(Signals(codec="h264", bpp=5.0, qp=0.0), rule)[0]  # lossless H.264
    # bits per pixel are read as H.264 would spend them: MPEG-2 needs about twice as many
    assert classify(Signals(codec="mpeg2video", bpp=rule.bpp * 1.5), rule)[0]
    assert not classify(Signals(codec="h264", bpp=rule.bpp * 1.5), rule)[0]
    lossless = Signals(codec="ffv1", width=64, height=64)
    d = decide_from(lossless, scale)
    assert (d.model == CLEAN) == RULES[scale].clean and d.why.startswith("clean")
    assert RULES[scale].clean or f"at ×{scale} {REAL} did as well" in d.why


def test_a_folder_of_frames_is_measured_by_its_pixels(tmp_path):
    from PIL import Image

    for t in range(6):
        Image.fromarray(scene(96, 160, t)).save(tmp_path / f"f{t:03d}.png")
    d = decide(tmp_path, 4)
    assert d.kind == "clean" and d.model == CLEAN and d.signals.bpp is None and d.signals.frames >= 4 and "bits/pixel" not in d.why


def test_the_bit_rate_is_the_same_read_from_any_container(tmp_path):
    """MP4 records the stream's bit rate; Matroska does not, and its packets are counted instead."""
    from vsr.auto import measure

    make_clip(tmp_path / "a.mp4", width=160, height=96, frames=20, crf=30)
    make_clip(tmp_path / "a.mkv", width=160, height=96, frames=20, crf=30)  # with an audio track, not counted
    mp4, mkv = measure(tmp_path / "a.mp4"), measure(tmp_path / "a.mkv")
    assert (mp4.rate_from, mkv.rate_from) == ("header", "packets")
    assert mkv.bpp == pytest.approx(mp4.bpp, rel=0.05) and mp4.qp == mkv.qp


def test_upscale_chooses_per_file_and_says_why(tmp_path):
    """A folder with clean and compressed videos (×4, where the two get different models): each file's line names
    its model and why, before the model line; each model is loaded once."""
    from vsr.jobs import Settings, upscale

    folder = tmp_path / "in"
    folder.mkdir()
    kw = {"width": 96, "height": 64, "frames": 4, "audio": False}
    make_clip(folder / "a_clean.mp4", crf=2, **kw)
    make_clip(folder / "b_blocky.mp4", crf=45, **kw)
    make_clip(folder / "c_clean.mp4", crf=3, **kw)
    ui = Collect()
    settings = Settings(model="auto", scale=4, backend="torch", precision="fp32", segment_seconds=0)
    results = upscale(folder, tmp_path / "out", settings, ui)
    assert len(results) == 3 and all(r.output.exists() for r in results)
    lines = [m for m in ui.said if m.startswith(("auto:", "model "))]
    assert [m.split(" ")[1] for m in lines] == [CLEAN, CLEAN, REAL, REAL, CLEAN], lines
    assert lines[0].startswith(f"auto: {CLEAN} (clean: QP") and lines[2].startswith(f"auto: {REAL} (compressed: QP")
    with av.open(str(tmp_path / "out" / "b_blocky.mp4")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].frames) == (384, 4)


def test_auto_at_a_scale_the_real_model_lacks(tmp_path):
    from vsr.zoo import scales_of

    if 3 in scales_of(REAL) or 3 not in scales_of(CLEAN):
        pytest.skip(f"{REAL} has ×3 weights, or {CLEAN} has none")
    d = decide(make_clip(tmp_path / "c.mp4", width=160, height=96, frames=6, crf=45, audio=False), 3)
    assert d.model == CLEAN and d.kind == "compressed" and f"{REAL} has no ×3 weights" in d.why, d.line


def test_auto_end_to_end_on_the_bundled_sample(tmp_path, cli):
    """vsr upscale without -m (auto) on samples/clip.mp4: the choice line, then the model line, then the video."""
    sample = ROOT / "samples" / "clip.mp4"
    want = decide(sample, 2)
    rc, _, err = cli("upscale", sample, tmp_path / "out.mp4", "--backend", "torch", "--segment-seconds", "0")
    assert rc == 0, err
    lines = [m for m in err.splitlines() if m.startswith(("auto:", "model "))]
    assert lines[0] == want.line and lines[1].startswith(f"model {want.model} ×2"), err
    with av.open(str(tmp_path / "out.mp4")) as c:
        v = c.streams.video[0]
        assert (v.width, v.height) == (640, 360) and len(list(c.decode(v))) == 50


def test_auto_is_refused_where_there_is_no_video_to_decide_from(tmp_path, cli, natural_rgb):
    from PIL import Image

    photo = tmp_path / "p.png"
    Image.fromarray(natural_rgb).save(photo)
    clip = make_clip(tmp_path / "c.mp4", width=64, height=48, frames=3, audio=False)
    for args in (["image", photo, "-m", "auto"], ["eval", clip, "-m", "auto"], ["bench", "-m", "auto"]):
        rc, _, err = cli(*args)
        lines = err.strip().splitlines()
        assert rc != 0 and len(lines) == 1 and lines[0].startswith("error: -m auto"), (args, err)
