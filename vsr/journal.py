"""A long job's work folder and its journal: what survives a crash, and how a rerun continues.

The work folder sits beside the output (``.<name>.vsr-work/``) and holds ``journal.json`` and one file per finished
segment. Every file is written to a temporary name, fsync'd and renamed, and the folder is fsync'd after, so a
crash (SIGKILL, power cut) at any moment leaves either the old journal or the new one, never a torn file, and a
segment is listed only once its file is complete on disk.

The journal holds the input's fingerprint (size, modification time, and a hash of its head and tail), the job's
settings (scale, model and its weights' hash, encoder, stream …), the segment plan and the finished segments. A
rerun with the same input and settings keeps the finished segments; anything else starts over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path

from vsr.errors import FULL, DiskFull, VsrError

VERSION = 1
def fingerprint(path: Path) -> dict:
    """Enough to tell a changed input from the same one, without reading all of a long file; for a folder of
    frames, each picture's name, size and modification time."""
    if path.is_dir():
        from vsr.formats import list_images

        h = hashlib.sha256()
        for p in list_images(path):
            st = p.stat()
            h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return {"pictures_sha256": h.hexdigest()}
    st = path.stat()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if st.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read(1 << 20))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_head_tail": h.hexdigest()}


def work_dir(output: Path) -> Path:
    return output.with_name(f".{output.name}.vsr-work")


@contextlib.contextmanager
def output_lock(output: Path):
    """One run per output at a time: a second run on the same output (file or folder) fails at once, naming the
    run that holds it. The lock is the OS's (flock), so a killed run leaves nothing that blocks the next one."""
    import filelock

    path = output.with_name(f".{output.name}.vsr-lock")
    pid_file = output.with_name(f".{output.name}.vsr-lock.pid")
    lock = filelock.FileLock(path, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        try:
            holder = f"pid {int(pid_file.read_text())}"
        except (OSError, ValueError):
            holder = "pid unknown"
        raise VsrError(f"another vsr run ({holder}) is writing {output}; wait for it to finish or stop it") from None
    except OSError as e:
        raise VsrError(f"cannot write beside {output}: {e.strerror or e}") from None
    try:
        pid_file.write_text(str(os.getpid()))
        yield
    finally:
        pid_file.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        lock.release()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """``data`` at ``path`` or nothing new there: temporary file, fsync, rename, fsync of the folder. A full disk
    is one ``DiskFull`` error and leaves no temporary file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if e.errno in FULL:
            raise DiskFull(f"the disk is full writing {path} ({e.strerror}); free some space and run the same "
                           f"command again: finished work is kept") from None
        raise VsrError(f"cannot write {path}: {e.strerror or e}") from None


class Journal:
    def __init__(self, folder: Path, data: dict):
        self.folder, self.data = folder, data

    @classmethod
    def open(cls, output: Path, input_fp: dict, settings: dict, plan: list[dict], restart: bool = False
             ) -> tuple[Journal, str]:
        """The job's journal, and what became of an earlier run's: "new", "resumed" or the reason it was
        discarded ("the input changed", …)."""
        # compared as the journal file holds them (a tuple comes back from JSON as a list)
        input_fp, settings, plan = json.loads(json.dumps([input_fp, settings, plan]))
        folder = work_dir(output)
        status = "new"
        old = None
        if folder.is_dir():
            try:
                old = json.loads((folder / "journal.json").read_text())
            except (OSError, ValueError):
                old = None
            if restart:
                status = "restarted on request"
            elif old is None or old.get("version") != VERSION:
                status = "its journal was unreadable"
            elif old["input"] != input_fp:
                status = "the input changed"
            elif old["settings"] != settings:
                changed = sorted(k for k in set(old["settings"]) | set(settings)
                                 if old["settings"].get(k) != settings.get(k))
                status = f"the settings changed ({', '.join(changed)})"
            elif old["plan"] != plan:
                status = "the segment plan changed"
            else:
                status = "resumed"
            if status != "resumed":
                shutil.rmtree(folder, ignore_errors=True)
        if status == "resumed":
            j = cls(folder, old)
            j.data["done"] = {k: v for k, v in j.data["done"].items() if j._intact(int(k), v)}
            return j, status
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise VsrError(f"cannot create the work folder {folder}: {e.strerror}") from None
        j = cls(folder, {"version": VERSION, "input": input_fp, "settings": settings, "plan": plan, "done": {}})
        j.save()
        return j, status

    def segment_path(self, index: int) -> Path:
        return self.folder / f"segment-{index:05d}.nut"

    def _intact(self, index: int, entry: dict) -> bool:
        p = self.segment_path(index)
        return "lost" in entry and p.is_file() and p.stat().st_size == entry["bytes"]

    @property
    def done(self) -> set[int]:
        return {int(k) for k in self.data["done"]}

    def finish_segment(self, index: int, data: bytes, frames: int, lost: list[int]) -> None:
        """``lost``: the timestamps of the segment's planned frames that did not decode (damaged packets)."""
        write_atomic(self.segment_path(index), data)
        self.data["done"][str(index)] = {"bytes": len(data), "frames": frames, "lost": lost,
                                         "sha256": hashlib.sha256(data).hexdigest()}
        self.save()

    def save(self) -> None:
        write_atomic(self.folder / "journal.json", json.dumps(self.data, indent=1, sort_keys=True).encode())

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
