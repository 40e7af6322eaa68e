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

from vsr.errors import Stopped, VsrError
from vsr.segments import FrameCount, Task, upscale_segment

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
    key = (ref.choice, ref.backend, ref.precision, hash(ref.data) if ref.data else None)
    if key not in _RUNNERS:
        import dataclasses

        from vsr.runner import open_runner

        choice = ref.choice
        if ref.data is not None:  # the user's own weight file, or a pulled one, sent with the job
            path = os.path.join(tempfile.mkdtemp(prefix="vsr-weights-"), ref.file)
            with open(path, "wb") as f:
                f.write(ref.data)
            choice = dataclasses.replace(choice, ref=path)
        _RUNNERS[key] = open_runner(choice, ref.backend, ref.precision, warn=lambda _m: None)[0]
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

    data, pts = upscale_segment(task, source, runner, on_frame=on_frame, warn=lambda _m: None)
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


REACH_SECONDS = 5  # a TCP connect to the cluster's address
ANSWER_SECONDS = 15  # then Ray's own handshake, which otherwise retries for minutes where nothing answers


def _check_reachable(address: str) -> None:
    """An address Ray cannot reach makes ray.init retry for minutes, printing as it goes: refuse it at once."""
    import socket

    if address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise VsrError(f"--ray-address {address}: expected HOST:PORT (the head node's, e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_SECONDS).close()
    except OSError as e:
        raise VsrError(f"no Ray cluster answers at {address} ({e.strerror or 'timed out'}); start one with "
                       "`ray start --head`, or check the address") from None


class _Terminal:
    """Ray's processes and its C++ core write to the process's stderr (fd 2), warnings included: while vsr uses Ray,
    fd 2 goes to a log file and vsr's own messages to the terminal it had (VSR_RAY_LOG=1 leaves Ray's on it)."""

    def __init__(self):
        import sys

        self.log = os.path.join(tempfile.gettempdir(), f"vsr-ray-{os.getpid()}.log")
        self.saved = self.stderr = None
        if os.environ.get("VSR_RAY_LOG"):
            return
        self.saved = os.dup(2)
        fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 2)
        os.close(fd)
        try:
            real = sys.stderr.fileno() == 2
        except (AttributeError, OSError, ValueError):  # (a test's captured stderr: leave it be)
            real = False
        if real:
            self.stderr = sys.stderr
            sys.stderr = os.fdopen(os.dup(self.saved), "w", buffering=1, encoding=sys.stderr.encoding,
                                   errors="backslashreplace")

    def say(self, line: str) -> None:
        """A line on the terminal itself, even while fd 2 is Ray's log."""
        os.write(self.saved if self.saved is not None else 2, (line + "\n").encode())

    def close(self, keep_log: bool = False) -> None:
        import sys

        if self.saved is None:
            return
        if self.stderr is not None:
            sys.stderr.close()
            sys.stderr = self.stderr
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.saved = None
        if not keep_log:
            try:
                os.unlink(self.log)
            except OSError:
                pass


def reap() -> None:
    """Run as a child of a driver that started an embedded Ray (``python -c "from vsr.ray_jobs import reap; reap()"``):
    follow the driver's process tree, and when the driver dies without saying it is done (SIGKILL, a crash), end
    what its Ray left running (its agents, and workers still starting, outlive it otherwise). Its stdin is the
    driver's word: "session DIR" (Ray's session folder, named in the command line of every process of that Ray),
    "done", or EOF."""
    import select
    import sys
    import time

    import psutil

    driver = psutil.Process(os.getppid())
    me = os.getpid()
    seen: dict[int, psutil.Process] = {}
    session = None
    while True:
        try:
            seen.update({p.pid: p for p in driver.children(recursive=True) if p.pid != me})
        except psutil.Error:
            pass
        ready, _, _ = select.select([sys.stdin], [], [], 0.2)
        if ready:
            line = sys.stdin.readline()
            if line.strip() == "done":
                return
            if line.startswith("session "):
                session = line.split(" ", 1)[1].strip()
                continue
            if line == "":
                break
        if not driver.is_running():
            break

    def of_the_session():
        if not session:
            return []
        out = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if p.pid != me and any(session in a for a in p.info["cmdline"] or ()):
                    out.append(p)
            except psutil.Error:
                pass
        return out

    for _ in range(3):  # (a dying raylet may still be starting a worker)
        for p in [*seen.values(), *of_the_session()]:
            try:
                if p.is_running():  # (the same process: psutil checks its start time, so a reused pid is left alone)
                    p.kill()
            except psutil.Error:
                pass
        time.sleep(0.5)


class RayScheduler:
    """Segments as Ray tasks. Connects (or starts the embedded Ray) when made; ``use`` gives it the model."""

    def __init__(self, model_ref=None, address: str | None = None, retries: int = 3):
        import subprocess
        import sys

        ray = self.ray = _ray()
        self.owns = not ray.is_initialized()
        self.terminal = self.reaper = None
        if self.owns:
            if address:
                _check_reachable(address)
            self.terminal = _Terminal()
            kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
            watchdog = threading.Timer(ANSWER_SECONDS, self._no_answer, (address,))
            watchdog.daemon = True
            watchdog.start()
            try:
                if address:
                    ray.init(address=address, **kwargs)
                else:  # an embedded Ray: this machine's cores, reachable only from this machine
                    self.reaper = subprocess.Popen([sys.executable, "-c", "from vsr.ray_jobs import reap; reap()"],
                                                   stdin=subprocess.PIPE, text=True)
                    started = ray.init(address="local", num_cpus=os.cpu_count(), _node_ip_address="127.0.0.1",
                                       **kwargs)
                    self.reaper.stdin.write(f"session {started.address_info['session_dir']}\n")
                    self.reaper.stdin.flush()
            except Exception as e:  # noqa: BLE001 - Ray raises many kinds; one line for the user
                watchdog.cancel()
                self.close(keep_log=True)
                first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                raise VsrError(f"Ray did not start: {first} (its log: {self.terminal.log})") from None
            watchdog.cancel()
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        gpus = sum(n["Resources"].get("GPU", 0) for n in nodes)
        self.resources = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        self.pin = not gpus
        self.slots = max(1, int(gpus) if gpus else sum(int(n["Resources"].get("CPU", 0)) for n in nodes))
        self.task = ray.remote(max_retries=retries)(_segment).options(**self.resources)
        self.counter = ray.remote(num_cpus=0)(_Counter).remote()
        self.nodes_used: list[str] = []  # node id per finished segment (tests, and the README's claims)
        self.model = None
        if model_ref is not None:
            self.use(model_ref)

    def _no_answer(self, address: str | None) -> None:
        """Ray's handshake has not finished: a port that is not a Ray head, or a cluster that is not well. Nothing
        has been written yet (Ray starts before any file work), so end here with one line."""
        where = f"at {address}" if address else "on this machine"
        self.terminal.say(f"error: no Ray cluster answered {where} within {ANSWER_SECONDS} s (Ray's log: "
                          f"{self.terminal.log})")
        os._exit(1)

    def use(self, model_ref) -> None:
        """The model every task runs: put in the object store once."""
        self.model_ref = model_ref
        self.model = self.ray.put(model_ref)

    def run(self, todo: list[tuple[Task, Callable[[], bytes]]], done: Callable[[int, bytes, list[int]], None],
            count: FrameCount, stop: threading.Event, warn: Callable[[str], None]) -> None:
        ray = self.ray
        queue = list(todo)
        inflight: dict = {}
        while queue or inflight:
            while queue and len(inflight) < 2 * self.slots:  # keep every slot busy, and the next segment ready
                task, source = queue.pop(0)
                inflight[self.task.remote(self.model, task, source(), self.counter, self.pin)] = task
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)
            count.add(ray.get(self.counter.take.remote()))
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
                    raise VsrError(f"segment {task.index} failed on a worker: {cause}") from None
                self.nodes_used.append(node)
                done(task.index, data, pts)
        time.sleep(0)  # let the counter's last updates land before the caller reads progress

    def close(self, keep_log: bool = False) -> None:
        if self.owns:
            self.ray.shutdown()
            self.owns = False
            if self.reaper is not None:
                self.reaper.communicate("done\n")
            if self.terminal is not None:
                self.terminal.close(keep_log)
