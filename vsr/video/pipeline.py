"""The streaming upscaler: decode → windows → model → encode, overlapped.

Three stages run at once, joined by small bounded queues (so memory holds a few frames whatever the video's
length):

* reader thread: demux, decode, convert to RGB with the input's colour tags, and make each frame's model input
  (:mod:`vsr.windows`: the window, its DIS flows, scene cuts); packets of other streams pass along in order;
* this thread: the model, up to ``runner.depth`` frames in flight;
* writer thread: convert to YUV with the same tags, encode, mux the video and the copied packets into a
  temporary file, renamed on success.

A stop event (Ctrl-C, SIGTERM) ends all three promptly; the temporary output is removed and nothing is left at
the target path.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from vsr.errors import Stopped
from vsr.tiling import run_tiled
from vsr.upscale_picture import upscale_alpha
from vsr.video.source import Frame, Packet
from vsr.windows import Window, options_for, windows

_END = object()
QUEUE_FRAMES = 4


@dataclass
class StageTimes:
    decode: float = 0.0  # seconds spent in each stage's own work (decode includes the windows' flows and motion)
    model: float = 0.0
    temporal: float = 0.0  # the temporal stage's blend (its flow is the decoder's)
    encode: float = 0.0


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


def run_stages(source, sink, runner, *, tile: int = 0, stop: threading.Event | None = None,
               on_frame: Callable[[int], None] | None = None, role: Callable[[Frame], str] | None = None,
               temporal=None) -> tuple[int, StageTimes]:
    """Decode ``source`` → windows → ``runner`` → ``sink`` with the three stages overlapped; finishes the sink (or
    aborts it and closes the source on failure). ``role(frame)`` picks frames for a segment: "out" (upscaled and
    written), "warm" (before the first output: a neighbour, and what a recurrent model or the temporal stage warms
    its state on), "edge" (after the last output: a neighbour only), "skip" (not seen) or "end" (nothing after it is
    needed). ``temporal`` (vsr.temporal.Temporal): the temporal stage after the model."""
    from vsr.temporal import Stabiliser

    stop = stop or threading.Event()
    scale = runner.scale
    stab = Stabiliser(scale, temporal) if temporal is not None else None
    history = runner.d.recurrent or stab is not None  # frames before the first output matter
    stages = StageTimes()
    errors: list[BaseException] = []
    q_in: queue.Queue = queue.Queue(QUEUE_FRAMES)
    q_out: queue.Queue = queue.Queue(QUEUE_FRAMES)

    def reader() -> None:
        def frames():  # the video frames, for the window stage; other streams' packets go straight on
            for item in source.items():
                if isinstance(item, Packet):
                    if not _put(q_in, item, stop):
                        return
                    continue
                r = role(item) if role else "out"
                if r == "end":
                    return
                if r != "skip":
                    yield item.rgb, (item, r)

        try:
            it = windows(frames(), **options_for(runner.model, temporal))
            while True:
                t = time.perf_counter()
                w = next(it, _END)
                stages.decode += time.perf_counter() - t
                if w is _END or not _put(q_in, w, stop):
                    break
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
                frame, rgb = item
                if rgb is not None:
                    sink.write_frame(rgb, frame, upscale_alpha(frame.alpha, scale))
                stages.encode += time.perf_counter() - t
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=reader, name="vsr-decode", daemon=True),
               threading.Thread(target=writer, name="vsr-encode", daemon=True)]
    for th in threads:
        th.start()

    done = 0
    inflight: deque[tuple[Window, object]] = deque()

    def finish(w: Window, y) -> bool:
        if stab is not None:
            t = time.perf_counter()
            y = stab.step(y, w.motion, w.reset)
            stages.temporal += time.perf_counter() - t
        return w.meta[1] != "out" or _put(q_out, (w.meta[0], y), stop)

    def drain(keep: int) -> bool:
        while len(inflight) > keep:
            w, handle = inflight.popleft()
            t = time.perf_counter()
            y = runner.collect(handle)
            stages.model += time.perf_counter() - t
            if not finish(w, y):
                return False
        return True

    def run(w: Window) -> bool:
        nonlocal done
        r = w.meta[1]
        if r == "edge" or (r == "warm" and not history):
            return True  # a neighbour only: its own output is not needed
        t = time.perf_counter()
        if r == "out":
            done += 1
            if on_frame:
                on_frame(done)
        if tile:
            y = run_tiled(runner, w, tile=tile)
            stages.model += time.perf_counter() - t
            return finish(w, y)
        inflight.append((w, runner.submit(w.frames, w.flows, w.reset)))
        stages.model += time.perf_counter() - t
        return drain(runner.depth - 1)

    try:
        while True:
            item = _get(q_in, stop)
            if item is _END:
                break
            if isinstance(item, Packet):
                if not _put(q_out, item, stop):
                    break
            elif not run(item):
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
    return done, stages
