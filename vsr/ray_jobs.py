"""Segments as Ray tasks: ``vsr upscale … --ray`` (an embedded Ray on this machine) or ``--ray-address ADDR`` (a
cluster). Ray is an optional extra: ``pip install 'vsr[ray]'``.

How segments travel: the driver reads each segment's compressed packets from the input (a few MB a minute of
video) and passes them as the task's argument; the worker returns the encoded segment as bytes. Both go through
Ray's object store, so workers need no shared storage and the input stays on the machine that has it; only
compressed video crosses the network. The weights are put in the object store once. The journal stays with the
driver, which writes each finished segment to the work folder as it arrives.

A task asks for one GPU where the cluster has GPUs (its worker then runs TensorRT or torch CUDA, as ``--backend
auto`` picks), else for one CPU: a worker pins itself to a core no other vsr worker on its machine holds, so every
core runs its own segment with its own decoder, model and encoder (on 2 cores that beat one segment at a time on
both cores; BENCHMARKS.md, "Long jobs"). A task whose worker dies (a lost node, a crash) is retried elsewhere
(``max_retries``): only that segment is redone.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable

from vsr.errors import VsrError
from vsr.segments import Progress, Task, run_segment

_RUNNERS: dict = {}  # per worker process: a runner per model, built once
_PINNED: list[int] = []  # the lock on the core this worker process holds, once it has one


def _pin_to_a_free_core() -> None:
    """Pin this worker process to a core that no other vsr worker on the machine holds: a lock file per core,
    which the OS releases when the process ends (a crashed worker frees its core). OpenVINO, the decoder and the
    encoder then size their threads to that one core. No free core: stay unpinned."""
    if _PINNED:
        return
    if not hasattr(os, "sched_setaffinity"):  # Linux only; elsewhere the OS places the threads
        _PINNED.append(-1)
        return
    import fcntl

    folder = os.path.join(tempfile.gettempdir(), "vsr-cores")
    os.makedirs(folder, exist_ok=True)
    for core in sorted(os.sched_getaffinity(0)):
        fd = os.open(os.path.join(folder, f"{core}.lock"), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        os.sched_setaffinity(0, {core})
        _PINNED.append(fd)
        return
    _PINNED.append(-1)


def _ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # never report usage anywhere
    try:
        import ray
    except ImportError:
        raise VsrError("--ray needs Ray: pip install 'vsr[ray]'") from None
    return ray


def _runner_for(ref):
    """The worker's runner for a model, built on first use (engines come from the worker's own cache)."""
    key = (ref.name, ref.scale, ref.backend, ref.precision, hash(ref.data) if ref.data else None)
    if key not in _RUNNERS:
        from engines import Identity, create_runner
        from vsr.weightfile import weights_id
        from vsr.zoo import load_model

        if ref.data is None:
            model, info = load_model(ref.name, ref.scale)
        else:
            folder = tempfile.mkdtemp(prefix="vsr-weights-")
            path = os.path.join(folder, f"{ref.name}{ref.suffix}")
            with open(path, "wb") as f:
                f.write(ref.data)
            model, info = load_model(path, None)
        _RUNNERS[key] = create_runner(model, backend=ref.backend, precision=ref.precision,
                                      identity=Identity.of(model, weights_id(info), info.name), warn=lambda _m: None)
    return _RUNNERS[key]


def _segment(ref, task: Task, source: bytes, counter, pin: bool):
    """A Ray task: one segment upscaled on this worker; (encoded segment, its frames' timestamps, node id)."""
    import ray

    if pin:
        _pin_to_a_free_core()
    runner = _runner_for(ref)
    pending = [0]

    def on_frame(_n):
        pending[0] += 1
        if pending[0] >= 8:
            counter.add.remote(pending[0])
            pending[0] = 0

    data, pts = run_segment(task, source, runner, on_frame=on_frame, warn=lambda _m: None)
    if pending[0]:
        counter.add.remote(pending[0])
    return data, pts, ray.get_runtime_context().get_node_id()


class _Counter:
    """Frames done on the workers since the driver last asked (one progress bar for the whole job)."""

    def __init__(self):
        self.n = 0

    def add(self, n: int) -> None:
        self.n += n

    def take(self) -> int:
        n, self.n = self.n, 0
        return n


class RayScheduler:
    def __init__(self, model_ref, address: str | None = None, retries: int = 3):
        ray = self.ray = _ray()
        self.owns = not ray.is_initialized()
        if self.owns:
            kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
            if address:
                ray.init(address=address, **kwargs)
            else:  # an embedded Ray: this machine's cores, reachable only from this machine
                ray.init(num_cpus=os.cpu_count(), _node_ip_address="127.0.0.1", **kwargs)
        self.model_ref = model_ref
        self.model = ray.put(model_ref)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        gpus = sum(n["Resources"].get("GPU", 0) for n in nodes)
        self.resources = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        self.pin = not gpus
        self.slots = max(1, int(gpus) if gpus else sum(int(n["Resources"].get("CPU", 0)) for n in nodes))
        self.task = ray.remote(max_retries=retries)(_segment).options(**self.resources)
        self.counter = ray.remote(num_cpus=0)(_Counter).remote()
        self.nodes_used: list[str] = []  # node id per finished segment (tests, and the README's claims)

    def run(self, todo: list[tuple[Task, Callable[[], bytes]]], done: Callable[[int, bytes, list[int]], None],
            progress: Progress, stop: threading.Event, warn: Callable[[str], None]) -> None:
        from vsr.video.pipeline import Stopped

        ray = self.ray
        queue = list(todo)
        inflight: dict = {}
        while queue or inflight:
            while queue and len(inflight) < 2 * self.slots:  # keep every slot busy, and the next segment ready
                task, source = queue.pop(0)
                inflight[self.task.remote(self.model, task, source(), self.counter, self.pin)] = task
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)
            progress.add(ray.get(self.counter.take.remote()))
            if stop.is_set():
                for ref in inflight:
                    ray.cancel(ref, force=True)
                raise Stopped()
            for ref in ready:
                task = inflight.pop(ref)
                try:
                    data, pts, node = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    cause = e.cause if getattr(e, "cause", None) is not None else e
                    raise VsrError(f"segment {task.segment.index} failed on a worker: {cause}") from None
                self.nodes_used.append(node)
                done(task.segment.index, data, pts)
        time.sleep(0)  # let the counter's last updates land before the caller reads progress

    def close(self) -> None:
        if self.owns:
            self.ray.shutdown()
