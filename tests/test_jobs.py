"""Long jobs: segments with seamless boundaries, the journal, resume after SIGKILL, changed settings, a full disk,
many files, and the same job on a local Ray cluster (with a worker that dies mid-segment)."""

from __future__ import annotations

import fractions
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import run_job, small

from vsr._testclips import make_clip, scene
from vsr.errors import VsrError


def _frames(path: Path):
    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


def _audio(path: Path):
    with av.open(str(path)) as c:
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def _clip(tmp_path: Path, name="in.mkv", frames=60, gop=10, **kw) -> Path:
    return make_clip(tmp_path / name, width=96, height=64, frames=frames, fps=25, gop=gop, audio=True, vfr=True,
                     subtitles=True, **kw)


def _job(src, dst, runner, info=None, *, seconds=0.5, restart=False, scheduler=None, stop=None, **opts):
    """A segmented job through vsr upscale's route with a test's runner (FFV1 unless ``codec`` says)."""
    from vsr.video.encoder import EncodeOptions

    result, _ = run_job(src, dst, runner, info=info, scheduler=scheduler, stop=stop, segment_seconds=seconds,
                        restart=restart, encode=EncodeOptions(codec=opts.pop("codec", "ffv1"), **opts))
    return result


def _reference(src, dst, runner):
    """The same in one pass."""
    from vsr.video.encoder import EncodeOptions

    run_job(src, dst, runner, encode=EncodeOptions(codec="ffv1"))
    return _frames(dst)


def _map(path):
    from vsr.video.source import VideoSource

    src = VideoSource(Path(path), scan=True)
    try:
        return src.packet_map()
    finally:
        src.close()


def test_the_plan_cuts_at_keyframes_with_halos():
    import tempfile

    from vsr.segments import Halo, plan

    with tempfile.TemporaryDirectory() as d:
        m = _map(make_clip(Path(d) / "c.mkv", width=64, height=48, frames=100, gop=10, audio=False))
    keys = {m.packets[k].pts for k in m.keyframes}
    segs = plan(m, 1.0, Halo.of(3, 4))
    assert len(segs) > 2 and segs[0].first == 0 and segs[-1].end == len(m.pts)
    for a, b in zip(segs, segs[1:]):
        assert a.end == b.first and m.pts[b.first] in keys  # contiguous, cut at keyframes
        assert b.feed_from == b.first - 5 and a.feed_to == a.end + 1  # the warm-up and neighbours around it
        assert m.packets[b.decode_from].key
    assert len(plan(m, 100.0, Halo.of(3, 0))) == 1  # a short input is one segment
    by_size = plan(m, 100.0, Halo.of(3, 0), max_bytes=sum(p.size for p in m.packets) // 4)
    assert 4 <= len(by_size) <= 5  # big packets (4K ProRes) cut a segment short: it travels in memory
    assert all(m.pts[s.first] in keys for s in by_size)


@pytest.mark.parametrize("name", ["mf-dis", "mf-fast"])
def test_segment_boundaries_are_seamless_for_window_models(tmp_path, name):
    """Through a lossless codec, the segmented job's frames equal the one-pass run's, bit for bit, and keep every
    timestamp; audio and subtitles are copied once."""
    from engines.torch_backend import TorchRunner

    src = _clip(tmp_path)
    runner = TorchRunner(small(name))
    ref = _reference(src, tmp_path / "ref.mkv", runner)
    result = _job(src, tmp_path / "out.mkv", runner)
    got = _frames(tmp_path / "out.mkv")
    assert result.segments > 2 and len(got) == len(ref) == 60
    assert [p for p, _ in got] == [p for p, _ in ref]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, ref))
    assert _audio(tmp_path / "out.mkv") == _audio(src)
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert [s.type for s in c.streams] == ["video", "audio", "subtitle"]
    assert not (tmp_path / ".out.mkv.vsr-work").exists()  # a finished job removes its work folder


def test_interlaced_segments_are_seamless(tmp_path):
    """Deinterlacing (bwdif) reads a frame either side of each: the halo grows by one, so a segmented job's frames
    still equal the one-pass run's."""
    from engines.torch_backend import TorchRunner

    src = make_clip(tmp_path / "tv.mkv", width=96, height=64, frames=30, gop=5, interlaced=True, audio=False)
    runner = TorchRunner(small("bicubic"))  # one frame: no neighbours in the halo to hide a missing one
    ref = _reference(src, tmp_path / "ref.mkv", runner)
    result = _job(src, tmp_path / "out.mkv", runner, seconds=0.2)
    got = _frames(tmp_path / "out.mkv")
    assert result.segments > 2 and [p for p, _ in got] == [p for p, _ in ref] and len(got) == 30
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, ref))


def _scene_clip(path: Path, codec: str, options: dict, size: tuple[int, int], frames: int,
                pix_fmt: str = "yuv420p") -> Path:
    from vsr._testclips import encode_scene

    with av.open(str(path), "w") as c:
        v = c.add_stream(codec, rate=25, options=options)
        v.width, v.height, v.pix_fmt = *size, pix_fmt
        encode_scene(c, v, range(frames))
    return path


@pytest.mark.parametrize("name, codec, options", [
    ("dvd.ts", "mpeg2video", {"bf": "2", "g": "6", "b": "2M"}),  # FFmpeg's MPEG-2 GOPs are open unless told
    ("open.mkv", "libx264", {"x264-params": "open-gop=1:keyint=6:min-keyint=6:bframes=2:b-adapt=0"}),
])
def test_open_gops_are_cut_without_losing_frames(tmp_path, name, codec, options):
    """In an open GOP the frames shown just before a keyframe are decoded after it (from both GOPs): a segment
    ending there must decode past the keyframe, and the next one, starting at it, drops those frames unseen."""
    from engines.torch_backend import TorchRunner

    src = _scene_clip(tmp_path / name, codec, options, (96, 64), 30)
    m = _map(src)
    shown = sorted(m.pts)
    assert any(shown.index(p.pts) < shown.index(m.packets[k].pts)  # a leading frame, decoded after its keyframe
               for k in m.keyframes[1:] for p in m.packets[k + 1:k + 3])
    runner = TorchRunner(small("bicubic"))  # one frame: no halo past the keyframe to hide the frames before it
    ref = _reference(src, tmp_path / "ref.mkv", runner)
    result = _job(src, tmp_path / "out.mkv", runner, seconds=0.2)
    got = _frames(tmp_path / "out.mkv")
    assert result.segments > 2 and [p for p, _ in got] == [p for p, _ in ref] and len(got) == 30
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, ref))


@pytest.mark.parametrize("name, codec, pix_fmt", [
    ("capture.avi", "rawvideo", "bgr24"),  # no codec tag: a copy into NUT reads as another pixel format
    ("capture.mov", "rawvideo", "uyvy422"),  # Matroska takes it only with its tag (2vuy)
    ("raw.y4m", "rawvideo", "yuv420p"),
    ("utvideo.avi", "utvideo", "gbrp"),  # the decoder reads its pixel format from the tag (ULRG)
])
def test_uncompressed_and_tagged_video_is_cut_into_segments_that_decode_as_the_input(tmp_path, name, codec, pix_fmt):
    from engines.torch_backend import TorchRunner

    src = _scene_clip(tmp_path / name, codec, {}, (96, 64), 12, pix_fmt)
    runner = TorchRunner(small("bicubic"))
    ref = _reference(src, tmp_path / "ref.mkv", runner)
    result = _job(src, tmp_path / "out.mkv", runner, seconds=0.2)
    got = _frames(tmp_path / "out.mkv")
    assert result.segments >= 2 and len(got) == len(ref) == 12
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, ref))


def test_video_no_container_can_hold_a_copy_of_runs_in_one_pass_said(tmp_path):
    from engines.torch_backend import TorchRunner

    src = _scene_clip(tmp_path / "anim.apng", "apng", {}, (96, 64), 12, "rgb24")
    result, warnings = run_job(src, tmp_path / "out.mkv", TorchRunner(small("bicubic")), segment_seconds=0.2)
    assert result.frames == 12 and result.segments <= 1
    assert any("apng video cannot be cut into segments" in w and "one pass" in w for w in warnings)


def test_damaged_packets_lose_their_frames_not_the_job(tmp_path):
    """A transport stream with a stretch of damaged packets mid-file: each segment holds the frames that decode,
    the join gives them their own timestamps, and the job says how many were lost (it failed with "holds 41
    frames where 49 were planned")."""
    src = make_clip(tmp_path / "rec.ts", frames=50, gop=10, audio=False, container="mpegts")
    data = bytearray(src.read_bytes())
    for start in range(len(data) // 3, len(data) // 3 + 6000, 188):  # TS packets: keep their headers
        for i in range(start + 8, start + 120):
            data[i] ^= 0x5A
    (tmp_path / "damaged.ts").write_bytes(bytes(data))
    args = ["-m", "bicubic", "-s", "2", "--backend", "torch", "--codec", "ffv1"]
    one = _vsr(tmp_path / "damaged.ts", tmp_path / "one.mkv", *args, "--segment-seconds", "0", "-q")
    r = _vsr(tmp_path / "damaged.ts", tmp_path / "out.mkv", *args, "--segment-seconds", "0.5", "-q")
    assert one.returncode == 0 and r.returncode == 0, r.stderr
    ref, got = _frames(tmp_path / "one.mkv"), _frames(tmp_path / "out.mkv")
    said = re.search(r"(\d+) of (\d+) frame\(s\) could not be decoded", r.stderr)
    assert said and int(said[1]) > 0 and int(said[2]) - int(said[1]) == len(ref) > 25, r.stderr
    assert [p for p, _ in got] == [p for p, _ in ref]
    # FFmpeg conceals a damaged frame one way with one decoder thread and another with several (5 frames here), so
    # the pixels of those frames can't be the job's to keep; every other frame must be the one pass's exactly
    concealed = _concealed(tmp_path / "damaged.ts")
    kept = [(a, b) for (p, a), (_, b) in zip(got, ref) if round(p / 1000, 3) not in concealed]
    assert len(kept) >= len(ref) - 8 and all(np.array_equal(a, b) for a, b in kept)


def _concealed(path: Path) -> set[float]:
    """The times (s) of the frames FFmpeg decodes differently with one thread and with several."""
    def decode(threads):
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.thread_type, s.codec_context.thread_count = "AUTO", threads
            return {round(float(f.time), 3): f.to_ndarray(format="rgb24") for f in c.decode(s)}
    one, several = decode(1), decode(4)
    return {t for t in one if t in several and not np.array_equal(one[t], several[t])}


def test_a_segment_with_nothing_decodable_is_passed_over(tmp_path):
    """A segment whose packets are all garbage holds no frames; the join passes over it and the job counts them."""
    import io

    from engines.torch_backend import TorchRunner
    from vsr.segments import upscale_segment

    src = _clip(tmp_path, frames=30, gop=5)
    runner = TorchRunner(small("bicubic"))

    def garbage(data: bytes) -> bytes:  # the same packets and timestamps, their payload noise
        rng = np.random.default_rng(0)
        with av.open(io.BytesIO(data)) as c:
            buf = io.BytesIO()
            with av.open(buf, "w", format="matroska") as o:
                v = o.add_stream_from_template(c.streams.video[0], opaque=True)
                for p in c.demux(c.streams.video[0]):
                    if p.size:
                        q = av.Packet(rng.integers(0, 256, p.size, dtype=np.uint8).tobytes())
                        q.pts, q.dts, q.time_base, q.stream = p.pts, p.dts, p.time_base, v
                        o.mux(q)
        return buf.getvalue()

    class SecondSegmentDamaged:
        def run(self, todo, finish, count, stop, warn):
            for task, source in todo:
                data = source() if task.index != 1 else garbage(source())
                finish(task.index, *upscale_segment(task, data, runner))

        def close(self):
            pass

    result = _job(src, tmp_path / "out.mkv", runner, seconds=0.2, scheduler=SecondSegmentDamaged())
    got = _frames(tmp_path / "out.mkv")
    ref = _reference(src, tmp_path / "ref.mkv", runner)
    assert result.segments > 2 and 0 < result.lost == len(ref) - len(got) and len(got) == result.frames
    assert all(any(p == q and np.array_equal(a, b) for q, b in ref) for p, a in got)


def test_mp4_with_b_frames_keeps_every_timestamp_and_frame(tmp_path):
    """An MP4 with B-frames (its first decode timestamps negative, a time base Matroska's milliseconds can't
    hold): segments remuxed and encoded on their own still give the one-pass frames, and the joined MP4 (itself
    with B-frames, its decode timestamps rebuilt across the boundaries) has exactly the input's timestamps."""
    from engines.torch_backend import TorchRunner

    src = _b_frame_mp4(tmp_path / "in.mp4", size=(96, 64), crf=20)  # a keyframe every 10 frames
    with av.open(str(src)) as c:
        v = c.streams.video[0]
        packets = [p for p in c.demux(v) if p.size]
        assert any(p.pts != p.dts for p in packets) and 1000 % v.time_base.denominator != 0
        times = sorted(p.pts * v.time_base for p in packets)
    runner = TorchRunner(small("mf-dis"))
    ref = _reference(src, tmp_path / "ref.mkv", runner)
    result = _job(src, tmp_path / "out.mkv", runner)
    got = _frames(tmp_path / "out.mkv")
    assert result.segments > 2 and len(got) == len(ref) == 60
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, ref))
    _job(src, tmp_path / "out.mp4", runner, codec="libx264")
    with av.open(str(tmp_path / "out.mp4")) as c:
        v = c.streams.video[0]
        out = [p for p in c.demux(v) if p.size]
        assert sorted(p.pts * v.time_base for p in out) == times
        assert any(p.pts != p.dts for p in out)  # B-frames, and the muxer took their decode timestamps


def _lossless_clip(path: Path, frames: list[np.ndarray], gop: int) -> Path:
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt, s.options = "yuv444p", {"qp": "0", "preset": "ultrafast"}
        s.codec_context.gop_size = gop
        for t, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv444p")
            vf.pts = t
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def test_a_recurrent_models_boundaries_match_after_its_warm_up(tmp_path):
    """A segment starts its state from zero that many frames early: its frames score within 0.05 dB of the
    one-pass run's (the bound the warm-up is defined by), against the ground truth the LR clip was made from."""
    from engines.torch_backend import TorchRunner
    from vsr._testclips import scene
    from vsr.metrics import psnr
    from vsr.resize import imresize
    from vsr.zoo import entry, load_model, weight_files

    shipped = next((name, s) for name, s in sorted(weight_files()) if entry(name) is not None
                   and load_model(name, s)[1].hparams.get("state"))
    model, info = load_model(*shipped)
    scale = info.scale
    hr = [scene(48 * scale, 72 * scale, t, speed=1.7) for t in range(80)]
    src = _lossless_clip(tmp_path / "lr.mkv", [imresize(f, 1 / scale) for f in hr], gop=10)
    runner = TorchRunner(model)
    ref = _reference(src, tmp_path / "ref.mkv", runner)
    result = _job(src, tmp_path / "out.mkv", runner, info)
    got = _frames(tmp_path / "out.mkv")
    assert result.segments > 1 and len(got) == len(ref) == 80
    worst = max(abs(psnr(a, h, shave=scale) - psnr(b, h, shave=scale)) for (_, a), (_, b), h in zip(got, ref, hr))
    assert worst <= 0.05


@pytest.mark.parametrize("arch", ["mf-dis", "sr-lite"])  # sr-lite: with the temporal stage (its settings recorded)
def test_a_changed_setting_starts_over_and_the_same_one_resumes(tmp_path, arch):
    from engines.torch_backend import TorchRunner
    from vsr.journal import Journal, fingerprint, work_dir

    src = _clip(tmp_path)
    runner = TorchRunner(small(arch))
    stop = threading.Event()
    done = []

    class StopAfterOne:  # a scheduler that finishes one segment, then is stopped
        def run(self, todo, finish, count, stop_, warn):
            from vsr.segments import upscale_segment

            task, source = todo[0]
            data, pts = upscale_segment(task, source(), runner)
            finish(task.index, data, pts)
            done.append(task.index)
            stop.set()

        def close(self):
            pass

    from vsr.errors import Stopped

    with pytest.raises(Stopped) as e:
        _job(src, tmp_path / "out.mkv", runner, scheduler=StopAfterOne(), stop=stop)
    assert e.value.kept == 1 and (work_dir(tmp_path / "out.mkv") / "segment-00000.nut").exists()
    resumed = _job(src, tmp_path / "out.mkv", runner)
    assert resumed.status == "resumed" and resumed.kept == 1
    assert [p for p, _ in _frames(tmp_path / "out.mkv")] == [p for p, _ in _frames(src)]
    stop.clear()
    with pytest.raises(Stopped):
        _job(src, tmp_path / "o2.mkv", runner, scheduler=StopAfterOne(), stop=stop)
    changed = _job(src, tmp_path / "o2.mkv", runner, pix_fmt="yuv444p")  # another setting: the kept one is not used
    assert changed.kept == 0 and changed.status.startswith("the settings changed")
    j, status = Journal.open(tmp_path / "o3.mkv", fingerprint(src), {"a": 1}, [], restart=False)
    assert status == "new" and j.folder.is_dir()


@pytest.mark.parametrize("arch", ["mf-dis", "sr-lite"])  # a window model; a per-frame one, with the temporal stage
@pytest.mark.parametrize("pictures_in", [False, True])
def test_frames_out_continue_where_a_stopped_run_left_them_and_equal_one_run(tmp_path, arch, pictures_in):
    """A long image sequence (a film scan) out is kept frame by frame in the work folder: the same command continues
    after the last frame written, feeding the halo before it again, and the folder equals an uninterrupted run's."""
    from conftest import Collect
    from PIL import Image

    from engines.torch_backend import TorchRunner
    from vsr.errors import Stopped
    from vsr.journal import work_dir

    src = make_clip(tmp_path / "in.mkv", width=64, height=48, frames=30, audio=False)
    if pictures_in:
        (tmp_path / "scan").mkdir()
        for i, (_, rgb) in enumerate(_frames(src)):
            Image.fromarray(rgb).save(tmp_path / "scan" / f"reel1_{i:04d}.png")
        src = tmp_path / "scan"
    runner = TorchRunner(small(arch))
    run_job(src, tmp_path / "ref", runner)
    stop = threading.Event()

    class StopAfter12(Collect):
        def update(self, done, total):
            if done >= 12:
                stop.set()

    out = tmp_path / "out"
    with pytest.raises(Stopped) as e:
        run_job(src, out, runner, stop=stop, ui=StopAfter12())
    kept = e.value.kept
    assert 2 <= kept < 30 and e.value.folder == work_dir(out) and not out.exists()  # (writing lags the model)
    (work_dir(out) / ".frame_000031.vsr-tmp-1.png").write_bytes(b"")  # a picture being written when it was killed
    ui = Collect()
    result, _ = run_job(src, out, runner, ui=ui)
    assert result.kept_frames == kept - 1 and f"resuming: {kept - 1} frame(s) were written by an earlier run" in ui.said
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "ref").iterdir()) and len(names) == 30 == result.frames
    assert all(np.array_equal(np.asarray(Image.open(out / n)), np.asarray(Image.open(tmp_path / "ref" / n)))
               for n in names)
    assert not work_dir(out).exists()


def test_frames_out_on_a_full_disk_keep_what_was_written_and_the_rerun_finishes(tmp_path, monkeypatch):
    import errno

    from PIL import Image

    from engines.torch_backend import TorchRunner
    from vsr import picture
    from vsr.errors import DiskFull
    from vsr.journal import work_dir

    src = make_clip(tmp_path / "in.mkv", width=64, height=48, frames=20, audio=False)
    runner = TorchRunner(small("mf-dis"))
    run_job(src, tmp_path / "ref", runner)
    write, calls = picture._write_pillow, []

    def full_after_8(*args, **kw):
        calls.append(1)
        if len(calls) > 8:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(*args, **kw)

    monkeypatch.setattr(picture, "_write_pillow", full_after_8)
    out = tmp_path / "out"
    with pytest.raises(DiskFull, match="run the same command again"):
        run_job(src, out, runner)
    assert sorted(p.name for p in work_dir(out).iterdir() if p.suffix == ".png") == [
        f"frame_{i:06d}.png" for i in range(1, 9)] and not out.exists()
    monkeypatch.setattr(picture, "_write_pillow", write)
    result, _ = run_job(src, out, runner)
    assert result.kept_frames == 7 and result.frames == 20
    assert all(np.array_equal(np.asarray(Image.open(out / n)), np.asarray(Image.open(tmp_path / "ref" / n)))
               for n in sorted(p.name for p in (tmp_path / "ref").iterdir()))


def test_pictures_into_a_video_are_cut_into_segments_that_resume_and_equal_one_pass(tmp_path):
    """A folder of pictures (a film scan) into one video: every picture is a keyframe, so it is cut into segments
    like a video file; a stopped run keeps its finished segments and the rerun's video equals one pass's."""
    from PIL import Image

    from engines.torch_backend import TorchRunner
    from vsr.errors import Stopped
    from vsr.segments import upscale_segment

    scan = tmp_path / "scan"
    scan.mkdir()
    for i in range(40):
        Image.fromarray(scene(48, 64, i)).save(scan / f"reel1_{i}.png")  # natural order: 2 before 10
    runner = TorchRunner(small("mf-dis"))
    ref = _reference(scan, tmp_path / "ref.mkv", runner)
    stop = threading.Event()

    class StopAfterOne:
        def run(self, todo, finish, count, stop_, warn):
            task, source = todo[0]
            finish(task.index, *upscale_segment(task, source(), runner))
            stop.set()

        def close(self):
            pass

    with pytest.raises(Stopped) as e:
        _job(scan, tmp_path / "out.mkv", runner, seconds=0.4, scheduler=StopAfterOne(), stop=stop)
    assert e.value.kept == 1 and e.value.total == 4
    result = _job(scan, tmp_path / "out.mkv", runner, seconds=0.4)
    got = _frames(tmp_path / "out.mkv")
    assert result.status == "resumed" and result.kept == 1 and result.segments == 4
    assert [p for p, _ in got] == [p for p, _ in ref] and len(got) == 40
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, ref))


def _vsr(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsr", "upscale", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kw)


def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path):
    """Killed with SIGKILL once a segment is in the journal: no file at the output, and the same command then
    finishes with the frames, timestamps and audio packets of a run that was never interrupted."""
    src = _clip(tmp_path, frames=150, gop=10)
    args = ["-m", "fast", "-s", "2", "--backend", "torch", "--codec", "ffv1", "--segment-seconds", "1", "-q"]
    assert _vsr(src, tmp_path / "ref.mkv", *args).returncode == 0
    out = tmp_path / "out.mkv"
    journal = tmp_path / ".out.mkv.vsr-work" / "journal.json"
    proc = subprocess.Popen([sys.executable, "-m", "vsr", "upscale", str(src), str(out), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(journal.read_text())["done"]:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    kept = len(json.loads(journal.read_text())["done"])
    assert kept >= 1
    r = _vsr(src, out, *args[:-1])
    assert r.returncode == 0, r.stderr
    assert f"resuming: {kept} of" in r.stderr
    a, b = _frames(out), _frames(tmp_path / "ref.mkv")
    assert [p for p, _ in a] == [p for p, _ in b] and all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b))
    assert _audio(out) == _audio(tmp_path / "ref.mkv")
    assert not journal.parent.exists()


def _limit_file_size(limit: int):
    def setup():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return setup


def test_a_full_disk_is_one_error_and_the_next_run_resumes(tmp_path):
    src = _clip(tmp_path, frames=100, gop=10)
    args = ["-m", "bicubic", "-s", "2", "--backend", "torch", "--codec", "ffv1", "--segment-seconds", "1"]
    ref = _vsr(src, tmp_path / "ref.mkv", *args, "-q")
    assert ref.returncode == 0
    size = (tmp_path / "ref.mkv").stat().st_size
    r = _vsr(src, tmp_path / "out.mkv", *args, "-q", preexec_fn=_limit_file_size(size // 3))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and lines[-1].startswith("error: ") and "disk is full" in lines[-1], r.stderr
    assert not (tmp_path / "out.mkv").exists()
    work = tmp_path / ".out.mkv.vsr-work"
    journal = json.loads((work / "journal.json").read_text())  # consistent: every listed segment is on disk, whole
    for k, v in journal["done"].items():
        assert (work / f"segment-{int(k):05d}.nut").stat().st_size == v["bytes"]
    assert not any("tmp" in p.name for p in work.iterdir())
    r = _vsr(src, tmp_path / "out.mkv", *args)
    assert r.returncode == 0 and "resuming" in r.stderr, r.stderr
    a, b = _frames(tmp_path / "out.mkv"), _frames(tmp_path / "ref.mkv")
    assert len(a) == len(b) and all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b))


def test_a_folder_of_videos_is_one_job_and_a_bad_file_is_skipped(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.mkv", "b.mp4", "c.MTS"):  # a camcorder's AVCHD file: read, written as .mkv
        make_clip(folder / name, width=64, height=48, frames=6, audio=True,
                  container="mpegts" if "MTS" in name else None)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video")
    (folder / "notes.txt").write_text("not a video either, and not touched")
    (folder / "._a.mkv").write_bytes(b"\x00\x05\x16\x07 macOS metadata beside a.mkv on a shared drive")
    r = _vsr(folder, tmp_path / "out", "-m", "bicubic", "-s", "2", "--backend", "torch", "-q")
    assert r.returncode == 1
    assert "broken.mp4" in r.stderr and "1 of 4 video(s) failed" in r.stderr.strip().splitlines()[-1]
    assert "._a" not in r.stderr  # hidden files are not videos
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == ["a.mkv", "b.mp4",
                                                                                                  "c.mkv"]
    assert len(_frames(tmp_path / "out" / "b.mp4")) == 6 == len(_frames(tmp_path / "out" / "c.mkv"))


def test_a_folder_jobs_output_names():
    from vsr.formats import output_names

    names = output_names([Path("a.mkv"), Path("a.vob"), Path("b.MTS"), Path("c.mp4"), Path("d.wmv")])
    assert list(names.values()) == ["a.mkv", "a.vob.mkv", "b.mkv", "c.mp4", "d.mkv"]


def test_hdr10_metadata_is_kept_where_the_encoder_can_carry_it(tmp_path):
    from vsr.video.colour import hdr_of

    src = tmp_path / "hdr.mkv"
    with av.open(str(src), "w") as out:
        s = out.add_stream("libx265", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p10le"
        s.codec_context.colorspace, s.codec_context.color_primaries, s.codec_context.color_trc = 9, 9, 16
        s.options = {"crf": "20", "preset": "ultrafast", "x265-params": "log-level=none:hdr10=1:master-display="
                     "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400"}
        from vsr._testclips import scene

        for i in range(3):
            f = av.VideoFrame.from_ndarray(scene(48, 64, i).astype(np.uint16) * 257, format="rgb48le")
            f = f.reformat(format="yuv420p10le")
            f.pts = i
            for p in s.encode(f):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    with av.open(str(src)) as c:
        want = hdr_of(next(c.decode(video=0)))
    r = _vsr(src, tmp_path / "out.mkv", "-m", "bicubic", "-s", "2", "--backend", "torch", "-q")
    assert r.returncode == 0, r.stderr
    with av.open(str(tmp_path / "out.mkv")) as c:
        f = next(c.decode(video=0))
        assert c.streams.video[0].codec_context.name == "hevc" and hdr_of(f) == want
        assert (f.color_primaries, f.color_trc, f.format.name) == (9, 16, "yuv420p10le")
    r = _vsr(src, tmp_path / "h264.mkv", "-m", "bicubic", "-s", "2", "--backend", "torch", "--codec", "libx264")
    assert r.returncode == 0 and "HDR10 metadata" in r.stderr and "libx264 cannot carry it" in r.stderr


def test_bt2020_rgb_is_not_gamut_converted():
    """RGB of a BT.2020 video goes back to YUV with the matrix only (the primaries and transfer stay): once swscale
    mapped it from BT.709's gamut instead, wrongly and at 0.1 fps."""
    from vsr.video.colour import Colour, from_rgb, to_rgb

    colour = Colour(matrix=9, range=1, primaries=9, trc=16, bits=10)
    rgb = (np.random.default_rng(0).random((32, 48, 3)) * 50000 + 5000).astype(np.uint16)
    back = to_rgb(from_rgb(rgb, colour, "yuv444p10le"), colour)
    assert np.abs(back.astype(int) - rgb.astype(int)).max() <= 2 * 64  # 10-bit steps: within two codes


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="core pinning is Linux only")
def test_ray_cpu_workers_pin_themselves_to_distinct_free_cores(tmp_path):
    """One worker per core, each on its own; one too many stays unpinned; a worker that ends frees its core."""
    cores = set(sorted(os.sched_getaffinity(0))[:4])
    code = ("import os, sys; from vsr.ray_jobs import _pin_to_a_free_core as pin; pin(); "
            "print(','.join(map(str, sorted(os.sched_getaffinity(0)))), flush=True); sys.stdin.read()")

    def start():  # the worker pins itself before it answers
        p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TMPDIR": str(tmp_path)},  # its own lock folder, apart from real jobs
                             preexec_fn=lambda: os.sched_setaffinity(0, cores))
        return p, {int(c) for c in p.stdout.readline().strip().split(",")}

    workers = [start() for _ in range(len(cores) + 1)]
    pinned = [got for _, got in workers[:-1]]
    assert all(len(g) == 1 for g in pinned) and set().union(*pinned) == cores
    assert workers[-1][1] == cores  # no free core left: unpinned
    first, its_core = workers[0]
    first.communicate("")  # that worker ends, and its core is free again
    again, got = start()
    assert got == its_core
    for p, _ in [*workers[1:], (again, None)]:
        p.communicate("")


# -- Ray ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    """A local three-node Ray cluster bound to 127.0.0.1 (one CPU a node); no other address is contacted."""
    # Ray turns "127.0.0.1" in an address into the machine's outward address when it connects (so that remote
    # nodes could reach it); this switch, read when ray is imported, keeps every connection on the loopback.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray = pytest.importorskip("ray")
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    ray_constants.ENABLE_RAY_CLUSTER = False  # in case ray was imported before this fixture ran
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                            "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def _crash_once(marker: str):
    """A worker set-up hook: the first segment started on any worker after ``marker`` appears kills its process,
    as a lost node or a crash would."""

    def setup():
        import vsr.ray_jobs

        real = vsr.ray_jobs.upscale_segment

        def maybe_crash(*a, **k):
            try:
                os.remove(marker)
            except FileNotFoundError:
                return real(*a, **k)
            os._exit(1)

        vsr.ray_jobs.upscale_segment = maybe_crash

    return setup


def test_a_local_ray_cluster_gives_the_local_output_and_survives_a_lost_worker(tmp_path, ray_cluster):
    import ray
    from ray import cloudpickle  # the pickler Ray sends the setup hook with; the standalone package is not a dependency

    from engines.torch_backend import TorchRunner
    from vsr.jobs import ModelRef
    from vsr.ray_jobs import RayScheduler
    from vsr.runner import Choice
    from vsr.weightfile import WeightInfo, save_weights

    model = small("mf-dis")
    wfile = save_weights(tmp_path / "m.safetensors", model, WeightInfo("m", model.arch, model.hparams, 2, 3))
    marker = tmp_path / "crash-once"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address=ray_cluster.address, runtime_env={"worker_process_setup_hook": _crash_once(str(marker))},
             include_dashboard=False, log_to_driver=False)
    try:
        src = _clip(tmp_path, frames=90)
        local = _job(src, tmp_path / "local.mkv", TorchRunner(model))
        marker.write_text("crash")
        ref = ModelRef(Choice(str(wfile), 2, 2), data=wfile.read_bytes(), backend="torch", precision="fp32",
                       file=wfile.name)
        scheduler = RayScheduler(ref)
        assert not scheduler.owns and scheduler.slots == 3
        result = _job(src, tmp_path / "ray.mkv", TorchRunner(model), scheduler=scheduler)
        assert result.segments == local.segments > 3
        assert not marker.exists()  # a worker died on one segment, and it was retried
        assert len(set(scheduler.nodes_used)) >= 2  # the segments spread over the nodes
        a, b = _frames(tmp_path / "ray.mkv"), _frames(tmp_path / "local.mkv")
        assert [p for p, _ in a] == [p for p, _ in b] and all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b))
        assert _audio(tmp_path / "ray.mkv") == _audio(tmp_path / "local.mkv")
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


# -- one route: reading, locking, folders, settings ------------------------------------------


def _b_frame_mp4(path: Path, frames: int = 60, gop: int = 10, size: tuple[int, int] = (64, 48), crf: int = 24) -> Path:
    from vsr._testclips import scene

    w, h = size
    with av.open(str(path), "w") as out:  # NTSC timing (1001/30000 s a frame), B-frames
        s = out.add_stream("libx264", rate=fractions.Fraction(30000, 1001))
        s.width, s.height, s.pix_fmt, s.options = w, h, "yuv420p", {"preset": "veryfast", "crf": str(crf)}
        s.time_base = s.codec_context.time_base = fractions.Fraction(1, 30000)
        s.codec_context.gop_size = gop
        for t in range(frames):
            f = av.VideoFrame.from_ndarray(scene(h, w, t), format="rgb24").reformat(format="yuv420p")
            f.pts = t * 1001
            for pk in s.encode(f):
                out.mux(pk)
        for pk in s.encode():
            out.mux(pk)
    return path


@pytest.mark.parametrize("kind", ["mpeg2-ts", "x264-open-gop-mkv", "b-frames-mp4"])
def test_seeking_reads_the_same_packets_as_reading_from_the_start(tmp_path, kind):
    """A segment's packets come from a seek to its keyframe; they are the packets a read from the start finds
    (bytes and timestamps), for open GOPs and B-frames, and the last segment costs no more reading than the
    first (indexed containers: MP4, Matroska)."""
    from vsr.segments import Halo, plan
    from vsr.video.probe import PacketReader

    if kind == "b-frames-mp4":
        src = _b_frame_mp4(tmp_path / "b.mp4", frames=90)
    else:
        codec, options, name = {
            "mpeg2-ts": ("mpeg2video", {"bf": "2", "g": "6", "b": "2M"}, "dvd.ts"),
            "x264-open-gop-mkv": ("libx264", {"x264-params": "open-gop=1:keyint=6:min-keyint=6:bframes=2:b-adapt=0"},
                                  "open.mkv")}[kind]
        src = _scene_clip(tmp_path / name, codec, options, (64, 48), 90)
    m = _map(src)
    segments = plan(m, 0.5, Halo.of(3, 2, 1))
    assert len(segments) > 4
    seeking, reading = PacketReader(src, 0, m), PacketReader(src, 0, m)
    try:
        costs = []
        for s in segments:
            before = seeking.demuxed
            got = [(bytes(p), p.pts, p.dts) for p in seeking.packets(s.decode_from, s.decode_to)]
            costs.append(seeking.demuxed - before)
            want = [(bytes(p), p.pts, p.dts) for p in reading.packets(s.decode_from, s.decode_to, seek=False)]
            assert got == want and len(got) == s.decode_to - s.decode_from
    finally:
        seeking.close()
        reading.close()
    if kind != "mpeg2-ts":  # (a transport stream has no index: FFmpeg's seek there is a search by timestamp)
        assert costs[-1] <= costs[0] + 2 * 6 + 4, costs


def test_a_second_run_on_the_same_output_fails_at_once_and_a_killed_one_does_not_block(tmp_path, cli):
    src = _clip(tmp_path, frames=12)
    out = tmp_path / "out.mkv"
    code = ("import sys, time; from pathlib import Path; from vsr.journal import output_lock\n"
            "with output_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        rc, _, err = cli("upscale", src, out, "-m", "bicubic", "--backend", "torch", "-q")
        assert rc == 1 and err.strip() == f"error: another vsr run (pid {holder.pid}) is writing {out}; wait for it " \
                                          "to finish or stop it"
        assert not out.exists() and not (tmp_path / ".out.mkv.vsr-work").exists()
    finally:
        holder.kill()  # as SIGKILL or a power cut would: nothing is released by the run itself
        holder.wait()
    rc, _, err = cli("upscale", src, out, "-m", "bicubic", "--backend", "torch", "-q")
    assert rc == 0, err
    assert out.exists() and not any(p.name.startswith(".out.mkv.vsr-lock") for p in tmp_path.iterdir())


def test_a_library_in_subfolders_keeps_its_tree_and_an_output_inside_it_is_not_read_back(tmp_path):
    """A folder of videos sorted into subfolders is one job: each output at the same place under the output folder,
    names meeting only within one folder; an output folder inside the input is left out of the inputs, and a rerun
    keeps what it finished."""
    from conftest import Collect

    from vsr.jobs import Settings, upscale

    lib = tmp_path / "lib"
    for rel in ("top.mp4", "2019/a.mp4", "2019/a.mkv", "2020/trip/b.mkv", ".hidden/c.mkv"):
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        make_clip(lib / rel, width=64, height=48, frames=4, audio=False)
    (lib / "2021").mkdir()  # no videos: no folder made for it
    out = lib / "x2"
    settings = Settings(model="bicubic", scale=2, backend="torch", segment_seconds=0)

    class Batch(Collect):  # the folder's progress, over all its videos
        def __init__(self):
            super().__init__()
            self.batches, self.ended = [], 0

        def batch(self, done, total, what):
            self.batches.append((done, total, what))

        def batch_end(self):
            self.ended += 1

    ui = Batch()
    upscale(lib, out, settings, ui)
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name[0] != ".")
    assert made == ["2019/a.mkv", "2019/a.mp4", "2020/trip/b.mkv", "top.mp4"]
    assert [s.split("] ")[1] for s in ui.said if s.startswith("[")] == ["top.mp4", "2019/a.mkv", "2019/a.mp4",
                                                                        "2020/trip/b.mkv"]
    assert len(_frames(out / "2020" / "trip" / "b.mkv")) == 4 and not (out / "2021").exists()
    done = [d for d, _, _ in ui.batches]
    total = 4 * 4 * 64 * 48  # frames × pixels, from the headers
    assert ui.ended == 1 and {t for _, t, _ in ui.batches} == {total} and done == sorted(done)
    assert done[0] == 0 and done[-1] == total and 0 < len({d for d in done if 0 < d < total})
    assert [w for _, _, w in ui.batches][0] == "0/4 videos" and ui.batches[-1][2] == "3/4 videos"
    with pytest.raises(VsrError, match="a folder of videos goes to a folder, not to one .mp4 file"):
        upscale(lib, tmp_path / "lib_x2.mp4", settings, Batch())
    assert not (tmp_path / "lib_x2.mp4").exists()  # no folder made under a video's name
    ui = Batch()
    upscale(lib, out, settings, ui)  # x2/ holds videos now: still not an input
    assert sum(s.endswith(": kept (finished by an earlier run)") for s in ui.said) == 4 and len(ui.said) == 5
    assert ui.batches == [] and ui.ended == 1  # nothing left to upscale: no progress to show


def test_a_stopped_folder_job_continues_with_the_same_command(tmp_path):
    """A folder job stopped after two of five files: the same command keeps those two (same input, same settings),
    resumes the interrupted third from its journal, and does the rest; a file that failed is retried; an output
    another setting made is not taken as finished."""
    from conftest import Collect

    from vsr.errors import Stopped
    from vsr.jobs import Settings, upscale

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        make_clip(folder / f"clip{i}.mkv", width=64, height=48, frames=20, gop=5, audio=False, seed=i)
    (folder / "clip4.mkv").write_bytes(b"not a video")
    out = tmp_path / "out"
    settings = Settings(model="bicubic", scale=2, backend="torch", segment_seconds=0.3)

    class StopInThird(Collect):  # stopped in the third file, once its first segment (10 frames) is kept
        third = False

        def say(self, msg):
            super().say(msg)
            self.third = self.third or msg.startswith("[3/5]")

        def update(self, done, total):
            if self.third and done >= 13:
                stop.set()

    stop = threading.Event()
    with pytest.raises(Stopped) as e:
        upscale(folder, out, settings, StopInThird(), stop)
    assert e.value.output == out / "clip2.mkv" and e.value.kept >= 1
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["clip0.mkv", "clip1.mkv"]
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("clip*.mkv")}
    ui = Collect()
    with pytest.raises(VsrError, match="1 of 5 video"):  # clip4 is still broken
        upscale(folder, out, settings, ui)
    said = "\n".join(ui.said)
    assert "clip0.mkv: kept" in said and "clip1.mkv: kept" in said and "resuming:" in said
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("clip[01].mkv")} == first  # not written again
    assert len(_frames(out / "clip2.mkv")) == 20 == len(_frames(out / "clip3.mkv"))
    make_clip(folder / "clip4.mkv", width=64, height=48, frames=20, gop=5, audio=False)  # fixed: retried
    ui = Collect()
    upscale(folder, out, settings, ui)
    assert sum(s.endswith(": kept (finished by an earlier run)") for s in ui.said) == 4
    assert len(_frames(out / "clip4.mkv")) == 20
    ui = Collect()  # another scale: the outputs are not this job's, and are not replaced unasked
    upscale(folder, out, Settings(model="bicubic", scale=3, backend="torch"), ui)
    assert any("skipping clip0.mkv" in s and "--overwrite" in s for s in ui.said)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("clip[01].mkv")} == first


@pytest.mark.parametrize("args, says", [
    (["--crf", "99"], "outside libx264's CRF range 0–51"),
    (["--codec", "libsvtav1", "--crf", "64"], "outside libsvtav1's CRF range 0–63"),
    (["--codec", "ffv1", "--crf", "10"], "does not apply to ffv1"),
    (["--tile", "-5"], "--tile"),
    (["--segment-seconds", "-1"], "--segment-seconds"),
    (["--fps", "0"], "--fps"),
    (["-s", "0"], "--scale"),
    (["--stream", "-1"], "--stream"),
])
def test_values_nobody_should_pass_are_one_error_line_before_any_work(tmp_path, cli, args, says):
    src = _clip(tmp_path, frames=6)
    rc, _, err = cli("upscale", src, tmp_path / "out.mkv", "-m", "bicubic", "--backend", "torch", *args)
    assert rc != 0 and len(err.strip().splitlines()) == 1 and err.startswith("error: ") and says in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]  # no output, no work folder, no lock


def test_the_output_lasts_as_long_as_the_input_at_the_same_rate(tmp_path, cli):
    """Through segments and the join, the last frame keeps its duration: the stream's duration and average frame
    rate are the input's (they came out 2.12 s and 23.58 fps for a 2 s clip at 25)."""
    src = make_clip(tmp_path / "in.mp4", width=64, height=48, frames=50, gop=10, fps=25, audio=False)
    rc, _, err = cli("upscale", src, tmp_path / "out.mp4", "-m", "bicubic", "--backend", "torch", "-q",
                     "--segment-seconds", "0.5")
    assert rc == 0, err
    with av.open(str(src)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        va, vb = a.streams.video[0], b.streams.video[0]
        last = [[p.duration * p.time_base for p in c.demux(v) if p.size][-1] for c, v in ((a, va), (b, vb))]
        assert last[0] == last[1] == fractions.Fraction(1, 25)
        assert vb.duration * vb.time_base == va.duration * va.time_base == 2 and vb.average_rate == 25


def test_an_address_without_a_ray_cluster_is_one_error_line_at_once(tmp_path, cli):
    import socket

    src = _clip(tmp_path, frames=6)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.perf_counter()
    rc, _, err = cli("upscale", src, tmp_path / "out.mkv", "-m", "bicubic", "--ray-address", f"127.0.0.1:{port}")
    assert rc == 1 and err.strip().splitlines() == [err.strip()] and "no Ray cluster answers" in err, err
    assert time.perf_counter() - t < 60 and sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]


def test_a_killed_ray_driver_leaves_no_ray_processes_behind(tmp_path):
    """SIGKILL of `vsr upscale --ray`: the embedded Ray's processes (its agents outlived the driver) all end."""
    import psutil

    pytest.importorskip("ray")
    src = _clip(tmp_path, frames=300, gop=10)
    proc = subprocess.Popen([sys.executable, "-m", "vsr", "upscale", str(src), str(tmp_path / "out.mkv"), "--ray",
                             "-m", "quality", "--backend", "torch", "--segment-seconds", "1", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    journal = tmp_path / ".out.mkv.vsr-work" / "journal.json"
    deadline, tree = time.time() + 120, {}
    while time.time() < deadline and proc.poll() is None and not journal.exists():
        time.sleep(0.2)
    for _ in range(20):  # the agents start a little after the head
        tree.update({p.pid: p for p in psutil.Process(proc.pid).children(recursive=True)})
        if any("Agent" in " ".join(p.cmdline()) for p in tree.values() if p.is_running()):
            break
        time.sleep(0.5)
    assert proc.poll() is None, proc.stderr.read()
    assert any("raylet" in " ".join(p.cmdline()) for p in tree.values())
    proc.kill()
    proc.wait()
    _, alive = psutil.wait_procs(list(tree.values()), timeout=20)
    assert alive == [], [" ".join(p.cmdline())[:80] for p in alive]


def test_without_an_output_it_goes_beside_the_input_named_for_the_scale(tmp_path, cli):
    """As vsr image does: clip.mp4 → clip_x2.mp4, a container vsr does not write (.y4m) → .mkv, a folder →
    folder_x3."""
    lib = tmp_path / "lib"
    lib.mkdir()
    make_clip(lib / "clip.mp4", width=32, height=24, frames=3, audio=False)
    with av.open(str(lib / "clip.y4m"), "w") as c:
        v = c.add_stream("rawvideo", rate=25)
        v.width, v.height, v.pix_fmt = 32, 24, "yuv420p"
        for p in [*v.encode(av.VideoFrame.from_ndarray(np.zeros((24, 32, 3), np.uint8), format="rgb24")),
                  *v.encode()]:
            c.mux(p)
    for args, made in (([lib / "clip.mp4"], lib / "clip_x2.mp4"), ([lib / "clip.y4m"], lib / "clip_x2.mkv"),
                       ([lib, "-s", "3"], tmp_path / "lib_x3" / "clip.mp4")):
        rc, _, err = cli("upscale", *args, "-m", "bicubic", "--backend", "torch", "-q")
        assert rc == 0 and made.is_file(), err
    rc, _, err = cli("upscale", lib / "clip.mp4", "-m", "bicubic", "-q")  # made before: not replaced unasked
    assert rc == 1 and "clip_x2.mp4 exists" in err
