"""The streaming upscaler: decode → sliding window → model → encode, overlapped.

Three stages run at once, joined by small bounded queues (so memory holds a
few frames whatever the video's length):

* reader thread: demux, decode, convert to RGB with the input's colour tags,
  to float; packets of other streams pass along in order;
* this thread: the sliding window (t-1, t, t+1 for a 3-frame model, edges
  repeated) and the model;
* writer thread: quantise, convert to YUV with the same tags, encode, mux the
  video and the copied packets into a temporary file, renamed on success.

A stop event (Ctrl-C, SIGTERM) ends all three promptly; the temporary output
is removed and nothing is left at the target path.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vsr.errors import VsrError
from vsr.tiling import run_tiled
from vsr.video.io import EncodeOptions, FolderSink, Frame, Packet, VideoSink, open_source

_END = object()
QUEUE_FRAMES = 4


class Stopped(Exception):
    """The run was interrupted; the output was removed."""


@dataclass
class StageTimes:
    decode: float = 0.0  # seconds spent in each stage's own work
    model: float = 0.0
    encode: float = 0.0


@dataclass
class Result:
    frames: int
    duration: float  # seconds of video written
    elapsed: float
    decode_errors: int = 0
    truncated: bool = False
    expected: int | None = None
    stages: StageTimes = field(default_factory=StageTimes)

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed if self.elapsed else 0.0


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event):
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    return _END


def upscale_video(
    src: Path,
    dst: Path,
    runner,
    *,
    opts: EncodeOptions | None = None,
    stream: int | None = None,
    fps: float = 25.0,
    tile: int = 0,
    overwrite: bool = False,
    stop: threading.Event | None = None,
    on_start: Callable[[object], None] | None = None,
    on_frame: Callable[[int], None] | None = None,
    warn: Callable[[str], None] = print,
    decode_threads: int = 0,
) -> Result:
    opts = opts or EncodeOptions()
    stop = stop or threading.Event()
    t0 = time.perf_counter()
    source = open_source(src, stream=stream, fps=fps, threads=decode_threads)
    info = source.info
    scale = runner.scale
    out_w, out_h = info.width * scale, info.height * scale
    folder_out = dst.suffix == "" or dst.is_dir()
    try:
        if folder_out:
            sink = FolderSink(dst, source, warn, overwrite)
        else:
            if info.extras.get("alpha"):
                warn("the input frames have alpha; video codecs here drop it (write to a folder to keep it)")
            sink = VideoSink(dst, source, opts, out_w, out_h, warn)
    except BaseException:
        source.close()
        raise
    if on_start:
        on_start(info)

    stages = StageTimes()
    fast = info.bits <= 8 and tile == 0  # 8-bit frames straight through the engine (engines/frame_io.py)
    errors: list[BaseException] = []
    q_in: queue.Queue = queue.Queue(QUEUE_FRAMES)
    q_out: queue.Queue = queue.Queue(QUEUE_FRAMES)
    peak = 65535.0 if info.bits > 8 else 255.0

    def reader() -> None:
        try:
            it = source.items()
            while True:
                t = time.perf_counter()
                item = next(it, _END)
                if item is _END:
                    break
                if isinstance(item, Frame):
                    pixels = item.rgb if fast else torch.from_numpy(item.rgb).permute(2, 0, 1).float().div_(peak)
                    stages.decode += time.perf_counter() - t
                    item = (item, pixels)
                if not _put(q_in, item, stop):
                    return
            _put(q_in, _END, stop)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            errors.append(e)
            stop.set()

    def writer() -> None:
        try:
            while True:
                item = _get(q_out, stop)
                if item is _END:
                    return
                t = time.perf_counter()
                if isinstance(item, Packet):
                    sink.write_packet(item.packet)
                    continue
                frame, y = item
                if isinstance(y, np.ndarray):  # already 8-bit RGB from the engine
                    rgb = y
                else:
                    dtype = torch.uint16 if peak > 255 else torch.uint8
                    with torch.inference_mode():
                        rgb = y.clamp(0, 1).mul_(peak).round_().to(dtype).permute(1, 2, 0).contiguous().numpy()
                if isinstance(sink, FolderSink):
                    sink.write_frame(rgb, frame, _upscale_alpha(frame.alpha, scale))
                else:
                    sink.write_frame(rgb, frame)
                stages.encode += time.perf_counter() - t
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=reader, name="vsr-decode", daemon=True),
               threading.Thread(target=writer, name="vsr-encode", daemon=True)]
    for th in threads:
        th.start()

    half = runner.frames // 2
    buf: deque = deque()  # (Frame, tensor) from global index `base` on
    base = received = done = 0

    inflight: deque = deque()  # (Frame, handle) submitted to the engine, oldest first

    def drain(keep: int) -> bool:
        while len(inflight) > keep:
            meta, handle = inflight.popleft()
            t = time.perf_counter()
            y = runner.collect(handle)
            stages.model += time.perf_counter() - t
            if not _put(q_out, (meta, y), stop):
                return False
        return True

    def emit(g: int) -> bool:
        """Output for frame g from frames g-half .. g+half, edges repeated."""
        nonlocal done
        window = [buf[min(max(g + k, 0), received - 1) - base][1] for k in range(-half, half + 1)]
        t = time.perf_counter()
        done += 1
        if on_frame:
            on_frame(done)
        if fast:  # up to runner.depth windows in flight
            inflight.append((buf[g - base][0], runner.submit(window)))
            stages.model += time.perf_counter() - t
            return drain(runner.depth - 1)
        x = torch.cat(window, 0)[None]
        with torch.inference_mode():
            y = run_tiled(runner, x, scale, tile=tile, multiple=runner.size_multiple)[0]
        stages.model += time.perf_counter() - t
        return _put(q_out, (buf[g - base][0], y), stop)

    try:
        while True:
            item = _get(q_in, stop)
            if item is _END:
                break
            if isinstance(item, Packet):
                if not _put(q_out, item, stop):
                    break
                continue
            buf.append(item)
            received += 1
            while done + half < received:  # frame `done` has its future neighbours
                if not emit(done):
                    break
                while base < done - half:
                    buf.popleft()
                    base += 1
        while not stop.is_set() and done < received:  # the last frames: repeat the final one
            if not emit(done):
                break
        if not stop.is_set():
            drain(0)
        _put(q_out, _END, stop)
    except BaseException as e:  # noqa: BLE001
        errors.append(e)
        stop.set()
    for th in threads:
        th.join()
    source.close()
    if errors or stop.is_set():
        sink.abort()
        err = errors[0] if errors else None
        if err is None or isinstance(err, KeyboardInterrupt):
            raise Stopped()
        raise err
    try:
        sink.finish()
    except BaseException:
        sink.abort()
        raise
    elapsed = time.perf_counter() - t0
    duration = float(sink.last_end * info.time_base) if hasattr(sink, "last_end") else done / float(info.rate)
    return Result(frames=done, duration=duration, elapsed=elapsed, decode_errors=source.decode_errors,
                  truncated=getattr(source, "truncated", False), expected=info.total if info.total_exact else None,
                  stages=stages)


def _upscale_alpha(alpha: np.ndarray | None, scale: int) -> np.ndarray | None:
    if alpha is None:
        return None
    import cv2

    h, w = alpha.shape
    peak = 65535 if alpha.dtype == np.uint16 else 255
    a = cv2.resize(alpha.astype(np.float32), (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.round(a), 0, peak).astype(alpha.dtype)
