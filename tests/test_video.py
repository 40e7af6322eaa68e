import fractions
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from conftest import run_job, small

from engines.torch_backend import TorchRunner
from vsr.errors import VsrError
from vsr.models.bicubic import Bicubic
from vsr._testclips import encode_scene, make_clip, scene
from vsr.video.encoder import EncodeOptions


def bicubic(scale=2):
    return TorchRunner(small("bicubic", scale))


def frames_of(path, index=None):
    with av.open(str(path)) as c:
        v = c.streams.video[0] if index is None else c.streams[index]
        return [(f.pts, f.time_base, f.width, f.height, f.format.name) for f in c.decode(v)]


def run(src, dst, runner=None, opts=None, **kw):
    """One pass through vsr upscale's route, with a test's runner: (result, warnings)."""
    return run_job(src, dst, runner or bicubic(), encode=opts or EncodeOptions(), **kw)


# ---------------------------------------------------------------------------
# nothing lost


def test_mp4_streams_metadata_chapters_and_timing_survive(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=15, subtitles=True, chapters=True, metadata={"title": "My film"})
    res, warnings = run(src, tmp_path / "out.mp4")
    assert warnings == [] and res.frames == 15
    with av.open(str(src)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        kinds = lambda c: [(s.type, s.codec_context.name if s.codec_context else None, s.metadata.get("language"))  # noqa: E731
                           for s in c.streams if s.type != "data"]
        assert kinds(a) == kinds(b)
        assert b.metadata.get("title") == "My film"
        assert [c["metadata"]["title"] for c in b.chapters()] == ["One", "Two"]
        assert abs(a.duration - b.duration) <= 40_000  # µs: within a frame
        audio_packets = lambda c: sum(1 for p in c.demux(c.streams.audio[0]) if p.size)  # noqa: E731
    with av.open(str(src)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        assert audio_packets(a) == audio_packets(b)  # copied, not re-encoded
        assert b.streams.audio[0].codec_context.name == "aac"
    fa, fb = frames_of(src), frames_of(tmp_path / "out.mp4")
    assert [p * tb for p, tb, *_ in fa] == [p * tb for p, tb, *_ in fb]
    assert fb[0][2:4] == (320, 192)


def test_variable_frame_rate_keeps_every_timestamp(tmp_path):
    src = make_clip(tmp_path / "vfr.mkv", frames=20, vfr=True, subtitles=True)
    run(src, tmp_path / "out.mkv")
    t_in = [float(p * tb) for p, tb, *_ in frames_of(src)]
    t_out = [float(p * tb) for p, tb, *_ in frames_of(tmp_path / "out.mkv")]
    assert len(set(np.round(np.diff(t_in), 3))) > 3  # the input really is irregular
    assert t_out == pytest.approx(t_in, abs=1e-3)
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [s.type for s in c.streams] == ["video", "audio", "subtitle"]


def _cues(path):
    with av.open(str(path)) as c:
        s = c.streams.subtitles[0]
        return s.codec_context.name, [(float(p.pts * p.time_base), float(p.duration * p.time_base),
                                       [repr(x).split("'")[1] for x in p.decode()]) for p in c.demux(s) if p.size]


@pytest.mark.parametrize("out, codec", [("out.mp4", "mov_text"), ("out.webm", "webvtt"), ("out.mkv", "subrip")])
@pytest.mark.parametrize("seconds", ["30", "0"])
def test_text_subtitles_go_into_the_text_format_the_output_holds(tmp_path, cli, out, codec, seconds):
    """SubRip from a .mkv was left out of a .mp4 with a warning; it is re-encoded as mov_text (WebVTT in WebM):
    the same cues at the same times."""
    src = make_clip(tmp_path / "in.mkv", frames=12, subtitles=True, audio=False)
    rc, _, err = cli("upscale", src, tmp_path / out, "-s", "2", "-m", "bicubic", "-q", "--segment-seconds", seconds)
    assert rc == 0 and "left out" not in err, err
    name, cues = _cues(tmp_path / out)
    assert name == codec.replace("subrip", "srt") and [c for c in cues if c[2]] == _cues(src)[1]
    assert [c[2] for c in _cues(src)[1]] == [["Bonjour"], ["Au revoir"]]


def _samples(path):
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        return a.codec_context.name, np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(a)]).astype(float)


@pytest.mark.parametrize("seconds", ["30", "0"])
def test_audio_a_container_cannot_hold_is_re_encoded(tmp_path, cli, seconds):
    """AAC into .webm (which holds Opus or Vorbis) was left out, leaving a silent video; it is re-encoded as Opus,
    with a warning: the same length and level."""
    src = make_clip(tmp_path / "in.mp4", frames=25, audio=True)
    rc, _, err = cli("upscale", src, tmp_path / "out.webm", "-s", "2", "-m", "bicubic", "-q",
                     "--segment-seconds", seconds)
    assert rc == 0 and err.count("re-encoded as Opus") == 1 and "left out" not in err, err
    (name_in, a), (name_out, b) = _samples(src), _samples(tmp_path / "out.webm")
    assert (name_in, name_out) == ("aac", "opus")
    assert abs(len(b) - len(a)) <= 0.03 * len(a) and np.std(a) > 0.05
    assert np.std(b) == pytest.approx(np.std(a), rel=0.1)  # the tone, not silence or noise


def _patches() -> np.ndarray:
    img = np.full((96, 160, 3), 128, np.uint8)  # mid-grey
    colours = [(235, 20, 20), (20, 235, 20), (20, 20, 235), (230, 230, 20), (20, 230, 230)]
    for i, c in enumerate(colours):
        img[32:64, 8 + 30 * i : 32 + 30 * i] = c
    return img


def _yuv_planes(path):
    with av.open(str(path)) as c:
        f = next(c.decode(video=0))
        planes = []
        for pl in f.planes[:3]:
            dtype = np.uint16 if f.format.name.endswith(("10le", "12le", "16le")) else np.uint8
            buf = np.frombuffer(bytes(pl), dtype=dtype).reshape(pl.height, -1)
            planes.append(buf[:, : pl.width].astype(int))
        return f, planes, f.format.name


@pytest.mark.parametrize("colorspace,color_range", [("itu601", "MPEG"), ("itu709", "JPEG")])
def test_colour_survives_an_identity_model(tmp_path, colorspace, color_range):
    src = make_clip(tmp_path / "in.mp4", rgb=_patches(), frames=3, colorspace=colorspace, color_range=color_range,
                    crf=0, audio=False, pix_fmt="yuv444p")
    res, _ = run(src, tmp_path / "out.mp4", TorchRunner(Bicubic(scale=1)), opts=EncodeOptions(crf=0))
    fa, pa, fmt_a = _yuv_planes(src)
    fb, pb, fmt_b = _yuv_planes(tmp_path / "out.mp4")
    assert (fb.colorspace, fb.color_range, fb.color_primaries, fb.color_trc) == (
        fa.colorspace, fa.color_range, fa.color_primaries, fa.color_trc)
    regions = [(slice(4, 24), slice(4, 150))] + [(slice(38, 58), slice(12 + 30 * i, 28 + 30 * i)) for i in range(5)]
    for ys, xs in regions:
        for a, b in zip(pa, pb):
            assert np.abs(a[ys, xs] - b[ys, xs]).max() <= 2, (ys, xs)


def test_ten_bit_stays_ten_bit(tmp_path):
    src = make_clip(tmp_path / "in10.mkv", frames=4, pix_fmt="yuv420p10le", colorspace="bt2020", audio=False)
    run(src, tmp_path / "out.mkv")
    f, planes, fmt = _yuv_planes(tmp_path / "out.mkv")
    assert fmt == "yuv420p10le" and f.colorspace == 9 and planes[0].max() > 255


def test_odd_output_size_is_padded_with_a_warning(tmp_path):
    src = make_clip(tmp_path / "odd.mp4", width=161, height=97, pix_fmt="yuv444p", frames=3, audio=False)
    res, warnings = run(src, tmp_path / "out.mp4", bicubic(3), opts=EncodeOptions(pix_fmt="yuv420p"))
    assert any("even" in w for w in warnings)
    assert frames_of(tmp_path / "out.mp4")[0][2:4] == (484, 292)


RAMP = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (48, 1))  # alpha, left to right


def alpha_clip(path, codec, pix_fmt, frames=5, options=None):
    """A 64×48 clip with moving colour and an alpha ramp."""
    with av.open(str(path), "w") as c:
        v = c.add_stream(codec, rate=24, options=options or {})
        v.width, v.height, v.pix_fmt = 64, 48, pix_fmt
        for t in range(frames):
            f = av.VideoFrame.from_ndarray(np.dstack([scene(48, 64, t), RAMP]), format="rgba").reformat(format=pix_fmt)
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
    return path


def alpha_planes(path):
    from vsr.video.source import decoder_for

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        d = decoder_for(v)  # VP9's alpha needs libvpx's decoder
        frames = [f for p in c.demux(v) for f in d.decode(p if p.size else None)]
        return v.codec_context.name, frames[0].format.name, [f.to_ndarray(format="rgba")[..., 3] for f in frames]


VP9_KEY2 = {"g": "2", "lossless": "1"}  # a keyframe every other frame: segments of two frames


@pytest.mark.parametrize("name, codec, pix_fmt, options, out, kept_in", [
    ("png.mov", "png", "rgba", None, "out.mov", ("prores", "yuva444p10le")),  # no PNG in Matroska: segments in NUT
    ("rle.mov", "qtrle", "argb", None, "out.mov", ("prores", "yuva444p10le")),  # nor QuickTime RLE in NUT: in MOV
    ("ffv1.mkv", "ffv1", "yuva420p", None, "out.mkv", ("ffv1", "yuva420p")),
    # VP9's alpha is packet side data, which NUT would drop: its segments go to Matroska
    ("vp9.webm", "libvpx-vp9", "yuva420p", VP9_KEY2, "out.webm", ("vp9", "yuva420p")),
    ("rgb.mov", "qtrle", "argb", None, "out.webm", ("vp9", "yuva420p")),  # libvpx keeps alpha only in yuva420p
])
def test_alpha_survives_a_video(tmp_path, cli, name, codec, pix_fmt, options, out, kept_in):
    from vsr.upscale_picture import upscale_alpha

    src = alpha_clip(tmp_path / name, codec, pix_fmt, options=options)
    rc, _, err = cli("upscale", src, tmp_path / out, "-s", "2", "-m", "bicubic", "-q", "--segment-seconds", "0.05")
    assert rc == 0, err
    got_codec, got_fmt, planes = alpha_planes(tmp_path / out)
    assert (got_codec, got_fmt) == kept_in and len(planes) == 5
    want = upscale_alpha(RAMP, 2).astype(int)
    assert all(np.abs(a.astype(int) - want).max() <= 2 for a in planes)


def test_alpha_where_the_output_cannot_keep_it_is_a_warning(tmp_path, cli):
    src = alpha_clip(tmp_path / "a.mov", "png", "rgba")
    rc, _, err = cli("upscale", src, tmp_path / "out.mp4", "-s", "2", "-m", "bicubic")
    assert rc == 0 and "alpha dropped" in err
    assert alpha_planes(tmp_path / "out.mp4")[0] == "h264"


def test_a_gif_has_alpha_only_where_it_is_transparent(tmp_path, cli):
    """FFmpeg decodes every GIF to BGRA: an opaque one is ordinary video (not kept lossless with an alpha plane, nor
    warned about), a transparent one keeps its transparency."""
    from PIL import Image

    for name, clear in (("opaque.gif", False), ("sticker.gif", True)):
        frames = []
        for t in range(4):
            im = Image.fromarray(scene(48, 64, t)).quantize(255)
            if clear:
                px = np.array(im)
                px[:, :16] = 255  # the palette's last entry, declared transparent
                im = Image.fromarray(px, mode="P")
                im.putpalette(Image.fromarray(scene(48, 64, t)).quantize(255).getpalette())
            frames.append(im)
        extra = {"transparency": 255, "disposal": 2} if clear else {}
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:], duration=80, **extra)
        rc, _, err = cli("upscale", tmp_path / name, tmp_path / f"{name}.mkv", "-s", "2", "-m", "bicubic")
        assert rc == 0, err
        codec, _, planes = alpha_planes(tmp_path / f"{name}.mkv")
        assert len(planes) == 4
        if clear:
            assert codec == "ffv1" and all((a[:, :28] == 0).all() and (a[:, 36:] == 255).all() for a in planes)
        else:
            assert codec == "h264"
    rc, _, err = cli("upscale", tmp_path / "opaque.gif", tmp_path / "out.mp4", "-s", "2", "-m", "bicubic")
    assert rc == 0 and "alpha dropped" not in err, err


def test_a_gif_comes_back_a_gif_with_its_timing_and_transparency(tmp_path, cli):
    """A GIF out has each frame's own palette (near the upscaled frame, not banded to a shared one), the input's
    frame delays, and its transparent pixels."""
    import cv2
    from PIL import Image

    frames = []
    for t in range(4):
        px = np.array(Image.fromarray(scene(48, 64, t)).quantize(255))
        px[:, :16] = 255  # the palette's last entry, declared transparent
        im = Image.fromarray(px, mode="P")
        im.putpalette(Image.fromarray(scene(48, 64, t)).quantize(255).getpalette())
        frames.append(im)
    frames[0].save(tmp_path / "in.gif", save_all=True, append_images=frames[1:], duration=[80, 80, 200, 80],
                   transparency=255, disposal=2)
    rc, _, err = cli("upscale", tmp_path / "in.gif", tmp_path / "out.gif", "-s", "2", "-m", "bicubic", "-q")
    assert rc == 0, err
    with av.open(str(tmp_path / "in.gif")) as a, av.open(str(tmp_path / "out.gif")) as b:
        ins, outs = list(a.decode(video=0)), list(b.decode(video=0))
        assert b.streams.video[0].codec_context.name == "gif" and (outs[0].width, outs[0].height) == (128, 96)
        assert [f.pts * f.time_base for f in outs] == [f.pts * f.time_base for f in ins] == [fractions.Fraction(c, 100) for c in (0, 8, 16, 36)]
        for f, g in zip(ins, outs):
            rgba, want = g.to_ndarray(format="rgba").astype(int), f.to_ndarray(format="rgba")
            assert (rgba[:, :28, 3] == 0).all() and (rgba[:, 36:, 3] == 255).all()
            up = cv2.resize(want[..., :3], (128, 96), interpolation=cv2.INTER_CUBIC).astype(int)
            assert np.abs(rgba[:, 36:, :3] - up[:, 36:]).mean() < 6


def test_an_mp4_that_phones_and_browsers_cannot_play_says_how_to_get_one(tmp_path, cli):
    """The input's 4:4:4 is kept in H.264 (as documented), which most players on the web and on phones refuse: said
    once, for .mp4, with the option that makes a playable file; not where the user chose the pixel format."""
    src = make_clip(tmp_path / "in.mkv", width=64, height=48, frames=3, codec="ffv1", pix_fmt="yuv444p", audio=False)
    args = ["-s", "2", "-m", "bicubic", "--backend", "torch"]
    rc, _, err = cli("upscale", src, tmp_path / "out.mp4", *args)
    assert rc == 0 and err.count("libx264 yuv444p (the input's depth and chroma, kept)") == 1, err
    assert "--pix-fmt yuv420p" in err
    for out, more in (("out.mkv", []), ("out2.mp4", ["--pix-fmt", "yuv444p"])):
        rc, _, err = cli("upscale", src, tmp_path / out, *args, *more)
        assert rc == 0 and "input's depth and chroma" not in err, err


def test_settings_the_encoder_refuses_are_one_error_before_any_work(tmp_path, cli):
    src = alpha_clip(tmp_path / "a.mov", "png", "rgba")
    rc, _, err = cli("upscale", src, tmp_path / "out.webm", "-s", "2", "-m", "bicubic", "--pix-fmt", "yuva444p", "-q")
    assert rc == 1 and err.startswith("error: libvpx-vp9 cannot encode") and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mov"]  # no output, and no work folder: nothing to resume


@pytest.mark.parametrize("codec, source, bits, want", [
    ("libx264", "yuv420p12le", 12, "yuv420p10le"),  # H.264 has no 12-bit here: 10, not 8
    ("libx264", "yuv422p10le", 10, "yuv422p10le"),
    ("libx264", "yuv411p", 8, "yuv422p"),  # DV: 4:2:2 holds all of 4:1:1's chroma
    ("libx265", "yuv444p12le", 12, "yuv444p12le"),
    ("libvpx-vp9", "yuv420p10le", 10, "yuv420p"),  # this libvpx is 8-bit only
])
def test_output_pixel_format_keeps_what_the_encoder_can(codec, source, bits, want):
    from vsr.video.encoder import choose_pix_fmt

    assert choose_pix_fmt(codec, source, bits) == want


@pytest.mark.parametrize("out", ["out.mp4", "out.mkv"])
def test_anamorphic_video_keeps_its_pixel_aspect_ratio(tmp_path, cli, out):
    """A 16:9 DVD is 720×480 with pixels 32:27 wide: ×2 is 1440×960 with the same pixels, or it plays squashed."""
    import fractions

    with av.open(str(tmp_path / "sar.mkv"), "w") as o:
        v = o.add_stream("libx264", rate=25, options={"g": "2"})
        v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
        v.codec_context.sample_aspect_ratio = fractions.Fraction(32, 27)
        encode_scene(o, v, range(6))
    rc, _, err = cli("upscale", tmp_path / "sar.mkv", tmp_path / out, "-s", "2", "-m", "bicubic", "-q",
                     "--segment-seconds", "0.1")
    assert rc == 0, err
    with av.open(str(tmp_path / out)) as c:
        v = c.streams.video[0]
        assert (v.width, v.height) == (192, 128)
        assert v.sample_aspect_ratio == fractions.Fraction(32, 27) and v.display_aspect_ratio == fractions.Fraction(16, 9)


@pytest.mark.parametrize("out", ["out.mov", "out.mp4", "out.mkv"])
@pytest.mark.parametrize("seconds", ["30", "0"])  # through the join, and one pass
def test_smpte_timecode_survives(tmp_path, cli, out, seconds):
    """A tape or broadcast source's start timecode (a QuickTime timecode track): MOV and MP4 get a new track,
    Matroska a tag; no warning about a data stream left out."""
    src = make_clip(tmp_path / "tape.mov", width=64, height=48, frames=5, audio=False)
    with av.open(str(src)) as c, av.open(str(tmp_path / "tc.mov"), "w") as o:  # remuxed with a timecode
        v = o.add_stream_from_template(c.streams.video[0], opaque=True)
        v.metadata["timecode"] = "10:00:00:00"
        v.codec_context.framerate = c.streams.video[0].average_rate
        for p in c.demux(c.streams.video[0]):
            if p.size:
                p.stream = v
                o.mux(p)
    with av.open(str(tmp_path / "tc.mov")) as c:
        assert [s.type for s in c.streams] == ["video", "data"]  # the timecode track
    rc, _, err = cli("upscale", tmp_path / "tc.mov", tmp_path / out, "-s", "2", "-m", "bicubic", "-q",
                     "--segment-seconds", seconds)
    assert rc == 0 and "left out" not in err, err
    with av.open(str(tmp_path / out)) as c:
        tags = {k.lower(): x for k, x in c.streams.video[0].metadata.items()}
        assert tags.get("timecode") == "10:00:00:00" and c.streams.video[0].frames in (0, 5)


@pytest.mark.parametrize("out", ["out.mov", "out.mp4"])
@pytest.mark.parametrize("seconds", ["30", "0"])
def test_a_phones_metadata_keys_survive(tmp_path, cli, out, seconds):
    """iPhone clips carry make, model and place as QuickTime keys (com.apple.quicktime.*), which MOV and MP4 write
    only when asked to."""
    tags = {"com.apple.quicktime.make": "Apple", "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/"}
    src = tmp_path / "phone.mov"
    with av.open(str(src), "w", options={"movflags": "use_metadata_tags"}) as c:
        c.metadata.update(tags)
        v = c.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        encode_scene(c, v, range(3))
    rc, _, err = cli("upscale", src, tmp_path / out, "-s", "2", "-m", "bicubic", "-q", "--segment-seconds", seconds)
    assert rc == 0, err
    with av.open(str(tmp_path / out)) as c:
        assert tags.items() <= c.metadata.items()


@pytest.mark.parametrize("seconds", ["0", "0.3"])
def test_a_size_change_mid_stream_is_rescaled_with_a_warning(tmp_path, cli, seconds):
    """A broadcast or screen recording can switch size mid-stream: such frames are rescaled to the first size
    (it was an error, and through segments a wrong-sized encode)."""
    src = tmp_path / "switch.ts"
    with av.open(str(src), "w", format="mpegts") as c:
        v = c.add_stream("libx264", rate=25, options={"g": "5"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        encode_scene(c, v, range(10))
        e = av.CodecContext.create("libx264", "w")  # a second encode, larger, in the same stream
        e.width, e.height, e.pix_fmt, e.time_base, e.framerate = 96, 72, "yuv420p", v.codec_context.time_base, 25
        for t in range(10, 20):
            f = av.VideoFrame.from_ndarray(scene(72, 96, t), format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = t, e.time_base
            for p in [*e.encode(f), *(e.encode(None) if t == 19 else [])]:
                p.stream, p.time_base = v, e.time_base
                c.mux(p)
    rc, _, err = cli("upscale", src, tmp_path / "out.mp4", "-s", "2", "-m", "bicubic", "-q",
                     "--segment-seconds", seconds)
    assert rc == 0 and err.count("the frame size changes mid-stream (64×48 → 96×72)") == 1, err
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert {(f.width, f.height) for f in c.decode(video=0)} == {(128, 96)} and c.streams.video[0].frames == 20


@pytest.mark.parametrize("out, kept", [("out.mp4", True), ("out.mov", True), ("out.mkv", False)])
def test_a_telemetry_track_is_copied_where_the_container_holds_it(tmp_path, cli, out, kept):
    """Action cameras put GPS and motion data in a data track FFmpeg has no codec for (GoPro's gpmd); MP4 and MOV
    hold a copy, Matroska does not (a warning that names the track)."""
    import fractions

    src = tmp_path / "gopro.mp4"
    with av.open(str(src), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        d = c.add_data_stream(codec_name="bin_data")
        d.metadata["handler_name"] = "GoPro MET"
        for t in range(5):
            for p in v.encode(av.VideoFrame.from_ndarray(scene(48, 64, t), format="rgb24")):
                c.mux(p)
            q = av.Packet(b"GPMF %d" % t)
            q.stream, q.pts, q.dts, q.time_base = d, t * 40, t * 40, fractions.Fraction(1, 1000)
            c.mux(q)
        for p in v.encode():
            c.mux(p)
    with av.open(str(src)) as c:
        want = [bytes(p) for p in c.demux(c.streams.data[0]) if p.size]
    rc, _, err = cli("upscale", src, tmp_path / out, "-s", "2", "-m", "bicubic", "-q")
    assert rc == 0, err
    with av.open(str(tmp_path / out)) as c:
        got = [bytes(p) for p in c.demux(*c.streams.data) if p.size] if c.streams.data else []
    assert len(want) >= 4 and got == (want if kept else [])
    assert ("GoPro MET) left out" in err) != kept, err


@pytest.mark.parametrize("out, kept", [("out.mov", ("prores", "yuv422p10le")), ("out.mp4", ("h264", "yuv422p10le"))])
def test_prores_in_prores_out(tmp_path, cli, out, kept):
    """An editor's ProRes 422 master stays ProRes in .mov (it became H.264 4:2:2, which editors and QuickTime
    handle badly); MP4 cannot hold ProRes: H.264 there, at the same depth and chroma."""
    src = make_clip(tmp_path / "master.mov", width=64, height=48, frames=4, codec="prores_ks", pix_fmt="yuv422p10le",
                    audio=False)
    rc, _, err = cli("upscale", src, tmp_path / out, "-s", "2", "-m", "bicubic", "-q")
    assert rc == 0, err
    with av.open(str(tmp_path / out)) as c:
        assert (c.streams.video[0].codec_context.name, c.streams.video[0].codec_context.pix_fmt) == kept


def _a53_sei(k: int) -> bytes:
    """An H.264 SEI NAL with two EIA-608 byte pairs in ATSC A/53 form; the first pair numbers the frame."""
    cc = bytes([0xFC, 0x80 + k, 0x81 + k, 0xFC, 0x94, 0xAD])
    payload = bytes([0xB5, 0x00, 0x31]) + b"GA94" + bytes([0x03, 0x40 | 2, 0xFF]) + cc + b"\xff"
    return b"\x00\x00\x00\x01\x06\x04" + bytes([len(payload)]) + payload + b"\x80"


def captioned_clip(path, frames=8):
    """An MPEG-TS H.264 clip (a keyframe every other frame) whose frames carry closed captions, as TV recordings do:
    an A/53 SEI put before each frame's first slice."""
    with av.open(str(path), "w", format="mpegts") as c:
        v = c.add_stream("libx264", rate=25, options={"g": "2"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        k = 0

        def mux(packets):
            nonlocal k
            for p in packets:
                data = bytes(p)
                first_slice = next(i for i in range(len(data) - 3) if data[i:i + 3] == b"\x00\x00\x01"
                                   and data[i + 3] & 0x1F in (1, 5))
                cut = first_slice - 1 if data[first_slice - 1] == 0 else first_slice
                q = av.Packet(data[:cut] + _a53_sei(k) + data[cut:])
                q.pts, q.dts, q.time_base, q.is_keyframe = p.pts, p.dts, p.time_base, p.is_keyframe
                q.stream = v
                c.mux(q)
                k += 1

        for t in range(frames):
            mux(v.encode(av.VideoFrame.from_ndarray(scene(48, 64, t), format="rgb24")))
        mux(v.encode())
    return path


def captions_of(path):
    with av.open(str(path)) as c:
        return [bytes(sd) if (sd := f.side_data.get("A53_CC")) is not None else None for f in c.decode(video=0)]


@pytest.mark.parametrize("out, codec", [("out.mp4", None), ("out.mkv", "libx265"), ("out.mxf", None)])
def test_closed_captions_in_the_video_stream_survive(tmp_path, cli, out, codec):
    src = captioned_clip(tmp_path / "tv.ts")
    want = captions_of(src)
    assert len(want) == 8 and all(want) and len(set(want)) == 8
    rc, _, err = cli("upscale", src, tmp_path / out, "-s", "2", "-m", "bicubic", "-q", "--segment-seconds", "0.1",
                     *(["--codec", codec] if codec else []))
    assert rc == 0 and "captions" not in err, err
    assert captions_of(tmp_path / out) == want  # each frame's own, in display order, across segments


def test_captions_an_encoder_cannot_carry_are_a_warning(tmp_path, cli):
    src = captioned_clip(tmp_path / "tv.ts", frames=3)
    rc, _, err = cli("upscale", src, tmp_path / "out.webm", "-s", "2", "-m", "bicubic", "-q")
    assert rc == 0 and err.count("closed captions") == 1, err


def test_av1_in_and_out(tmp_path, cli):
    """AV1 is decoded by libdav1d, which has no encoder of that name: copying its packets (segments, the join) must
    not look for one."""
    src = make_clip(tmp_path / "in.mp4", frames=6, gop=2)
    rc, _, err = cli("upscale", src, tmp_path / "av1.mkv", "-s", "2", "-m", "bicubic", "-q", "--codec", "libsvtav1",
                     "--segment-seconds", "0.1")
    assert rc == 0, err
    rc, _, err = cli("upscale", tmp_path / "av1.mkv", tmp_path / "out.mp4", "-s", "2", "-m", "bicubic", "-q",
                     "--segment-seconds", "0.1")
    assert rc == 0, err
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert (c.streams.video[0].width, c.streams.video[0].frames) == (4 * 160, 6)


def test_rgba_frames_into_a_mov_keep_alpha(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(3):
        Image.fromarray(np.dstack([scene(48, 64, t), RAMP])).save(folder / f"f{t}.png")
    res, warnings = run(folder, tmp_path / "seq.mov", fps=12)
    codec, _, planes = alpha_planes(tmp_path / "seq.mov")
    assert res.frames == 3 and codec == "prores" and not any("alpha" in w for w in warnings)
    assert planes[0][:, 0].max() <= 2 and planes[0][:, -1].min() >= 253


# ---------------------------------------------------------------------------
# windows, counts, streams


@pytest.mark.parametrize("n", [1, 2, 5])
def test_short_videos_and_multiframe_windows(tmp_path, n):
    src = make_clip(tmp_path / "short.mp4", frames=n, audio=False)
    for name in ("mf-fast", "rvsr"):
        res, _ = run(src, tmp_path / "out.mp4", TorchRunner(small(name)), overwrite=True)
        assert res.frames == n == len(frames_of(tmp_path / "out.mp4"))


@pytest.mark.parametrize("backend", ["torch", "openvino"])
@pytest.mark.parametrize("name", ["mf-dis", "rvsr"])
def test_models_with_flows_and_state_stream(tmp_path, backend, name):
    """Models that take DIS flows (and a state) stream: the reader makes their windows, the runner carries the
    state; 8-bit and 10-bit input alike."""
    from engines.openvino_backend import OpenVINORunner

    model = small(name)
    for pix_fmt in ("yuv420p", "yuv420p10le"):
        src = make_clip(tmp_path / f"pan-{pix_fmt}.mp4", frames=4, audio=False, pix_fmt=pix_fmt)
        runner = TorchRunner(model) if backend == "torch" else OpenVINORunner(model, precision="fp32")
        res, _ = run(src, tmp_path / "out.mp4", runner, overwrite=True)
        assert res.frames == 4 == len(frames_of(tmp_path / "out.mp4"))


@pytest.mark.parametrize("backend", ["torch", "openvino"])
def test_window_is_t_minus_1_t_t_plus_1_with_repeated_edges(tmp_path, backend):
    """A probe model that outputs the mean of its window reveals which frames it saw (and in which order)."""
    import torch

    from engines.openvino_backend import OpenVINORunner

    class Probe(torch.nn.Module):
        scale, frames, size_multiple = 2, 3, 1

        def forward(self, x):
            mean = (x[:, 0:3] + x[:, 3:6] + x[:, 6:9]) / 3.0
            return torch.nn.functional.interpolate(mean, scale_factor=2.0, mode="nearest")

    levels = [40, 90, 140, 190, 30, 60, 120]
    texture = np.random.default_rng(0).integers(0, 40, (8, 8, 3))  # one shot: the same picture, brighter or darker
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, v in enumerate(levels):
        Image.fromarray((texture + v).astype(np.uint8)).save(folder / f"f{i}.png")
    runner = TorchRunner(Probe()) if backend == "torch" else OpenVINORunner(Probe(), precision="fp32")
    run(folder, tmp_path / "out", runner)
    got = [int(np.asarray(Image.open(tmp_path / "out" / f"f{i}.png"))[0, 0, 0]) for i in range(len(levels))]
    padded = [levels[0]] + levels + [levels[-1]]
    expect = [int((3 * texture[0, 0, 0] + padded[i] + padded[i + 1] + padded[i + 2]) / 3 + 0.5)
              for i in range(len(levels))]
    assert got == expect


def _two_video_streams(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        small = out.add_stream("libx264", rate=25)
        small.width, small.height, small.pix_fmt = 64, 48, "yuv420p"
        big = out.add_stream("libx264", rate=25)
        big.width, big.height, big.pix_fmt = 96, 64, "yuv420p"
        for i in range(5):
            for s in (small, big):
                f = av.VideoFrame.from_ndarray(scene(s.height, s.width, i), format="rgb24").reformat(format="yuv420p")
                f.pts = i
                for p in s.encode(f):
                    out.mux(p)
        for s in (small, big):
            for p in s.encode():
                out.mux(p)
    return path


def test_several_video_streams_and_stream_choice(tmp_path):
    src = _two_video_streams(tmp_path / "two.mkv")
    run(src, tmp_path / "a.mkv")
    run(src, tmp_path / "b.mkv", stream=1)
    assert frames_of(tmp_path / "a.mkv", 0)[0][2:4] == (128, 96)
    assert frames_of(tmp_path / "b.mkv", 0)[0][2:4] == (192, 128)
    with pytest.raises(VsrError, match="not a video stream"):
        run(src, tmp_path / "c.mkv", stream=7)


def test_cover_art_is_not_the_video(tmp_path):
    src = tmp_path / "cover.mkv"
    jpeg = tmp_path / "c.jpg"
    Image.fromarray(scene(32, 32, 0)).save(jpeg)
    with av.open(str(src), "w") as out:
        out.add_attachment("cover.jpg", "image/jpeg", jpeg.read_bytes())
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            f = av.VideoFrame.from_ndarray(scene(48, 64, i), format="rgb24").reformat(format="yuv420p")
            f.pts = i
            for p in v.encode(f):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
    res, _ = run(src, tmp_path / "out.mkv")
    assert res.frames == 3 and frames_of(tmp_path / "out.mkv", 0)[0][2:4] == (128, 96)


# ---------------------------------------------------------------------------
# bad input


def test_bad_inputs_are_clear_errors(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    audio = tmp_path / "audio.m4a"
    with av.open(str(audio), "w") as out:
        a = out.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        for p in list(a.encode(frame)) + list(a.encode()):
            out.mux(p)
    for path, needle in [(empty, "empty"), (text, "not a video"), (audio, "audio only"), (tmp_path / "none.mp4", "no such")]:
        with pytest.raises(VsrError, match=needle):
            run(path, tmp_path / "out.mp4")
        assert not (tmp_path / "out.mp4").exists()


def test_truncated_file_is_upscaled_up_to_the_damage(tmp_path):
    src = make_clip(tmp_path / "in.mkv", frames=30, audio=False)
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    res, _ = run(cut, tmp_path / "out.mkv")
    assert 0 < res.frames < 30 and len(frames_of(tmp_path / "out.mkv")) == res.frames


@pytest.mark.parametrize("ext", [".ts", ".mkv"])
def test_garbage_in_the_middle_is_survived_or_reported(tmp_path, ext):
    src = make_clip(tmp_path / f"in{ext}", frames=30, audio=False)
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 400] = np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8).tobytes()
    bad = tmp_path / f"bad{ext}"
    bad.write_bytes(bytes(data))
    res, _ = run(bad, tmp_path / f"out{ext}")
    assert len(frames_of(tmp_path / f"out{ext}")) == res.frames > 0
    if ext == ".ts":  # MPEG-TS resynchronises after damage
        assert res.frames >= 25
    else:  # Matroska may stop at the damage: then the run says so, never silently
        assert res.frames >= 25 or res.truncated


# ---------------------------------------------------------------------------
# image sequences


def test_frame_folder_in_and_out_keeps_names_and_depth(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in (1, 2, 10):  # natural order: 1, 2, 10
        img = (scene(24, 32, i).astype(np.uint16) * 257)
        import cv2

        cv2.imwrite(str(folder / f"frame{i}.png"), img[..., ::-1])
    res, _ = run(folder, tmp_path / "up")
    assert res.frames == 3
    names = sorted(p.name for p in (tmp_path / "up").iterdir())
    assert names == ["frame1.png", "frame10.png", "frame2.png"]
    from vsr.picture import read_picture

    pic = read_picture(tmp_path / "up" / "frame10.png")
    assert pic.bits == 16 and pic.size == (64, 48)
    res, _ = run(folder, tmp_path / "seq.mp4", fps=12)
    fr = frames_of(tmp_path / "seq.mp4")
    assert len(fr) == 3 and float(fr[1][0] * fr[1][1]) == pytest.approx(1 / 12, abs=1e-3)


def test_a_dpx_or_tiff_sequence_stays_dpx_or_tiff(tmp_path):
    """Film scans come as DPX or TIFF sequences, which grading tools read back: those keep their format out (a
    JPEG sequence becomes PNG, lossless)."""
    import av
    from PIL import Image

    from vsr.picture import read_picture

    for ext in (".dpx", ".tif", ".jpg"):
        folder = tmp_path / f"scan_{ext[1:]}"
        folder.mkdir()
        for i in range(3):
            name = folder / f"reel1_{i:05d}{ext}"
            if ext == ".dpx":
                with av.open(str(name), "w", format="image2") as c:
                    v = c.add_stream("dpx")
                    v.width, v.height, v.pix_fmt = 32, 24, "gbrp10le"
                    frame = av.VideoFrame.from_ndarray(scene(24, 32, i), format="rgb24")
                    for p in [*v.encode(frame), *v.encode()]:
                        c.mux(p)
            else:
                Image.fromarray(scene(24, 32, i)).save(name)
        out = tmp_path / f"up_{ext[1:]}"
        res, _ = run(folder, out)
        kept = ext if ext != ".jpg" else ".png"
        assert res.frames == 3 and sorted(p.name for p in out.iterdir()) == [f"reel1_{i:05d}{kept}" for i in range(3)]
        pic = read_picture(out / f"reel1_00002{kept}")
        assert pic.size == (64, 48) and pic.bits == (16 if ext == ".dpx" else 8)


def test_pictures_whose_names_would_meet_out_keep_their_whole_names():
    from vsr.formats import frame_files

    names = frame_files([Path(n) for n in ("a.jpg", "a.png", "b.JPG", "b.bmp", "c.tif", "c.dpx", "d.webp")])
    assert names == ["a.jpg.png", "a.png", "b.JPG.png", "b.bmp.png", "c.tif", "c.dpx", "d.png"]


# ---------------------------------------------------------------------------
# interruption (a real process, a real signal)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_leaves_nothing_behind(tmp_path, sig, code):
    """Ctrl-C or SIGTERM: exit 130/143, nothing at the output path, no temporary file; the work folder holds only
    the journal and finished segments, for the next run to resume."""
    src = make_clip(tmp_path / "long.mp4", frames=400, width=320, height=192, audio=True, gop=25)
    out = tmp_path / "out.mp4"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vsr", "upscale", str(src), str(out), "--backend", "torch",
                             "-m", "bicubic", "-s", "4", "--preset", "medium", "--segment-seconds", "2"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    deadline = time.time() + 120
    line = ""
    while time.time() < deadline:
        line = proc.stderr.readline()
        if line.startswith("input:") or not line:
            break
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert not out.exists() and "run the same command to resume" in err
    work = tmp_path / ".out.mp4.vsr-work"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.mp4.vsr-work", "long.mp4"]
    assert all(p.name == "journal.json" or p.name.startswith("segment-") for p in work.iterdir())
    assert not any("tmp" in p.name for p in work.iterdir())


def test_cli_upscale_end_to_end(tmp_path, cli):
    src = make_clip(tmp_path / "in.mp4", frames=6)
    # ProRes packets have no place in NUT, where segments are kept: they go in MOV
    for out, codec, name in (("out.mkv", "ffv1", "ffv1"), ("out.mov", "prores_ks", "prores")):
        rc, _, err = cli("upscale", src, tmp_path / out, "-s", "2", "--backend", "torch", "--codec", codec, "-q")
        assert rc == 0, err
        with av.open(str(tmp_path / out)) as c:
            assert c.streams.video[0].codec_context.name == name and c.streams.audio
            assert len(list(c.decode(c.streams.video[0]))) == 6
    rc, _, err = cli("upscale", src, tmp_path / "out.mkv", "--backend", "torch")
    assert rc == 1 and "exists" in err
    rc, _, err = cli("upscale", src, tmp_path / "x.mp4", "--codec", "nope", "--backend", "torch")
    assert rc == 1 and err.strip().splitlines()[-1].startswith("error: ") and not (tmp_path / "x.mp4").exists()
    rc, _, err = cli("upscale", src, tmp_path / "x.mov", "--codec", "ffv1", "-m", "bicubic")  # MOV holds no FFV1
    assert rc == 1 and "cannot hold ffv1" in err and not list(tmp_path.glob("*x.mov*"))


def test_recompress_keeps_count_and_order_loses_detail_and_repeats():
    """The real-footage protocol's codec step: one H.264 clip, frames back in order, lossy, the same every run,
    odd sizes kept."""
    from vsr.video.recompress import recompress

    frames = [scene(61, 83, t, speed=3.0) for t in range(12)]
    a, b = recompress(frames, crf=26), recompress(frames, crf=26)
    assert len(a) == 12 and all(f.shape == (61, 83, 3) and f.dtype == np.uint8 for f in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))

    def err(x, y):
        return np.abs(x.astype(int) - y.astype(int)).mean()

    assert all(min(range(12), key=lambda j: err(a[i], frames[j])) == i for i in range(12))  # its own frame is nearest
    assert 0 < err(a[5], frames[5]) < err(recompress(frames, crf=40)[5], frames[5])  # a higher CRF loses more
    small = recompress([f[:30, :20] for f in frames[:3]], codec="libx265", preset="medium")  # x265 under 64 px
    assert [f.shape for f in small] == [(30, 20, 3)] * 3


def _bands(h: int, w: int) -> tuple[np.ndarray, int]:
    """Flat saturated colours in vertical bands (where BT.601 and BT.709 disagree most), band edges on even columns."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (200, 30, 40),
               (30, 200, 60)]
    a, bw = np.zeros((h, w, 3), np.uint8), (w // len(colours)) & ~1
    for i, c in enumerate(colours):
        a[:, i * bw : (i + 1) * bw] = c
    return a, bw


@pytest.mark.parametrize("w, h", [(1280, 720), (854, 480)])
def test_recompress_encodes_what_players_decode(tmp_path, w, h):
    """recompress's stream, read as vsr upscale (or a player) reads it, gives its frames back within 3 levels at
    CRF 0 (BT.709 for HD, BT.601 for SD, as vsr.video.colour.untagged says and the stream's tags repeat), and
    recompress returns exactly the frames so read. (The product's RGB↔YUV conversions are within ±2 levels each,
    tests/test_video.py above, and 4:2:0 chroma rounds once more; read with the other matrix, these colours are
    more than 20 levels off.)"""
    from vsr.video.colour import to_rgb, untagged
    from vsr.video.recompress import encode, recompress
    from vsr.video.source import VideoSource, frames_of

    img, bw = _bands(h, w)
    encode([img, img], tmp_path / "c.mkv", crf=0, preset="ultrafast")
    src = VideoSource(tmp_path / "c.mkv")
    assert src.colour.matrix == untagged(w, h).matrix == (1 if w >= 1280 else 6) and not src.colour.assumed  # tagged
    played = list(frames_of(tmp_path / "c.mkv"))
    assert all(np.array_equal(a, b) for a, b in zip(played, recompress([img, img], crf=0, preset="ultrafast")))

    def worst(rgb):  # inside the bands (chroma is 4:2:0: their edges are blurred)
        inside = [slice(i * bw + 4, (i + 1) * bw - 4) for i in range(8)]
        return max(np.abs(rgb[:, x].astype(int) - img[:, x]).max() for x in inside)

    assert worst(played[0]) <= 3
    with av.open(str(tmp_path / "c.mkv")) as c:
        frame = next(c.decode(video=0))
    assert worst(to_rgb(frame, untagged(640, 360) if w >= 1280 else untagged(1280, 720))) > 20


@pytest.mark.parametrize("spec", [{"width": 1280, "height": 720, "colorspace": None},
                                  {"width": 320, "height": 240, "colorspace": None},
                                  {"width": 320, "height": 240, "colorspace": "bt2020", "pix_fmt": "yuv420p10le"}],
                         ids=["untagged-HD", "untagged-SD", "10-bit"])
def test_every_path_decodes_a_clip_as_the_product_does(tmp_path, spec):
    """Training's frame store, scoring (vsr eval, training's validation) and recompress's decoder give the frames
    vsr upscale decodes (vsr.video.source), in 8 bits by one rounding rule (vsr.video.colour.to_8bit)."""
    from train.store import load_sources
    from vsr.evaluate import load_source
    from vsr.video.colour import to_8bit, untagged
    from vsr.video.recompress import decode
    from vsr.video.source import VideoSource, frames_of

    clip = make_clip(tmp_path / "c.mkv", frames=3, audio=False, crf=10, **spec)
    src = VideoSource(clip)
    if spec["colorspace"] is None:
        assert src.colour == untagged(spec["width"], spec["height"])
    product = list(frames_of(clip))
    assert len(product) == 3 and product[0].dtype == (np.uint16 if "10" in spec.get("pix_fmt", "") else np.uint8)
    eight = [to_8bit(f) for f in product]
    assert np.array_equal(to_8bit(np.arange(65536, dtype=np.uint16)), np.round(np.arange(65536) / 257))
    stored = load_sources([str(clip)], 4, tmp_path / "cache")[1][0].hr
    scored = load_source(clip, 4, max_frames=3).items[0].hr
    for name, frames in (("store", stored), ("eval", scored), ("recompress", decode(clip))):
        assert len(frames) == 3 and all(np.array_equal(a, np.asarray(b)) for a, b in zip(eight, frames)), name


def test_eval_scores_a_folder_of_video_files_clip_by_clip(tmp_path, cli):
    """A folder of video files is a folder of clips (as one of frame folders is): each scored as alone."""
    folder = tmp_path / "clips"
    folder.mkdir()
    a = make_clip(folder / "a.mp4", width=96, height=64, frames=4, audio=False)
    make_clip(folder / "b.mkv", width=64, height=64, frames=4, audio=False, crf=35)
    (folder / "notes.txt").write_text("not a clip")

    def row(out, name):
        return out.split(f"│ {name} ")[1].split("│")[1].strip()

    rc, out, err = cli("eval", str(folder), "--scale", "2", "-m", "bicubic", "--max-frames", "4")
    assert rc == 0, err
    assert row(out, "a.mp4") != row(out, "b.mkv") and "notes" not in out
    rc, alone, err = cli("eval", str(a), "--scale", "2", "-m", "bicubic", "--max-frames", "4")
    assert rc == 0, err
    assert row(out, "a.mp4") == row(alone, "a")


def test_eval_reads_a_folder_of_clips_one_clip_at_a_time(tmp_path, monkeypatch):
    """A library of clips is not held in memory at once: each is decoded when its turn comes."""
    import vsr.evaluate as ev

    for name in ("a.mp4", "b.mp4", "c.mp4"):
        make_clip(tmp_path / name, width=64, height=48, frames=3, audio=False)
    decoded = []
    real = ev.frames_of
    monkeypatch.setattr(ev, "frames_of", lambda p, n=0: decoded.append(p.name) or real(p, n))
    src, items = ev.iter_source(tmp_path, 2, max_frames=3)
    assert src.kind == "video" and src.count == 3 and decoded == []  # (the count: what eval's progress shows)
    assert next(items).name == "a.mp4" and decoded == ["a.mp4"]
    assert [i.name for i in items] == ["b.mp4", "c.mp4"] and decoded == ["a.mp4", "b.mp4", "c.mp4"]


def test_eval_with_crf_scores_the_compressed_lr(tmp_path, cli, natural_rgb):
    clip = make_clip(tmp_path / "c.mp4", width=96, height=64, frames=6, audio=False)

    def bicubic_psnr(*extra):
        rc, out, err = cli("eval", str(clip), "--scale", "2", "-m", "bicubic", "--max-frames", "6", *extra)
        assert rc == 0, err
        return float(out.split("│ c ")[1].split("│")[1].split("/")[0])

    assert bicubic_psnr("--crf", "35") < bicubic_psnr() - 0.3
    import cv2

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    cv2.imwrite(str(pictures / "p.png"), natural_rgb[..., ::-1])
    rc, _, err = cli("eval", str(pictures), "--scale", "2", "--crf", "26")  # images: not for this option
    assert rc != 0 and err.startswith("error:")


def test_eval_no_state_resets_a_recurrent_model_every_frame(tmp_path, cli):
    """The ablation switch: a recurrent model scores differently with its state reset every frame; a model without
    a state is refused."""
    from torch.nn import init as nn_init

    from vsr.weightfile import WeightInfo, save_weights

    clip = make_clip(tmp_path / "c.mp4", width=96, height=64, frames=6, audio=False)
    files = {}
    for name in ("rvsr", "mf-dis"):
        m = small(name, feedback=True) if name == "rvsr" else small(name)
        nn_init.normal_(m.head[0].weight, std=0.1)  # random weights large enough that the state shows
        files[name] = save_weights(tmp_path / f"{name}.safetensors", m, WeightInfo(name, m.arch, m.hparams, 2, 3))

    def model_psnr(*extra):
        rc, out, err = cli("eval", str(clip), "--scale", "2", "-m", str(files["rvsr"]), "--max-frames", "6", *extra)
        assert rc == 0, err
        return float(out.split("│ c ")[1].split("│")[2].split("/")[0])

    assert model_psnr() != model_psnr("--no-state")
    rc, _, err = cli("eval", str(clip), "--scale", "2", "-m", str(files["mf-dis"]), "--no-state")
    assert rc != 0 and err.splitlines()[-1] == "error: --no-state: mf-dis has no hidden state"


# ---------------------------------------------------------------------------
# interlaced input


def combing(rgb):
    """How much rows alternate: each row against the mean of its neighbours (interlacing's comb)."""
    y = rgb.astype(float).mean(2)
    return np.abs(y[1:-1] - (y[:-2] + y[2:]) / 2).mean()


def test_interlaced_video_is_deinterlaced_unless_asked_not_to(tmp_path, cli):
    src = make_clip(tmp_path / "tv.mp4", frames=10, interlaced=True)
    for mode in ("auto", "off"):
        rc, _, err = cli("upscale", src, tmp_path / f"{mode}.mp4", "-s", "2", "-m", "bicubic", "--deinterlace", mode,
                         "-q")
        assert rc == 0, err
    auto, off, ref = frames_of(tmp_path / "auto.mp4"), frames_of(tmp_path / "off.mp4"), frames_of(src)
    assert [f[0] for f in auto] == [f[0] for f in off] == [f[0] for f in ref]  # one frame per frame, same clock

    def comb(path):
        with av.open(str(path)) as c:
            return np.mean([combing(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)])

    assert comb(tmp_path / "auto.mp4") < comb(tmp_path / "off.mp4") / 3
    plain = make_clip(tmp_path / "p.mp4", frames=4, audio=False)  # progressive: untouched by auto
    run(plain, tmp_path / "p2.mkv", opts=EncodeOptions(codec="ffv1"))
    run(plain, tmp_path / "p3.mkv", opts=EncodeOptions(codec="ffv1"), deinterlace="off")
    with av.open(str(tmp_path / "p2.mkv")) as a, av.open(str(tmp_path / "p3.mkv")) as b:
        assert all(np.array_equal(x.to_ndarray(format="rgb24"), y.to_ndarray(format="rgb24"))
                   for x, y in zip(a.decode(video=0), b.decode(video=0)))
    rc, _, err = cli("upscale", src, tmp_path / "x.mp4", "--deinterlace", "maybe")
    assert rc != 0 and err.startswith("error:") and "deinterlace" in err
