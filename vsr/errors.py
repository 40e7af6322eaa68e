"""The exception types the CLI turns into one line and an exit code."""

from __future__ import annotations

import errno
import os
import re


class VsrError(Exception):
    """A problem the user can act on; its message is shown as one line."""


FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # what a write fails with when the disk (or quota) is full


class DiskFull(VsrError):
    pass


class Stopped(Exception):
    """A run ended early on request (Ctrl-C, SIGTERM): nothing was left at the output path. ``kept``: segments (or
    frames: ``unit``) a long job's work folder keeps for the next run (``folder``), of ``total``."""

    def __init__(self, kept: int = 0, total: int = 0, folder=None, output=None, unit: str = "segment(s)"):
        super().__init__("stopped")
        self.kept, self.total, self.folder, self.output, self.unit = kept, total, folder, output, unit


def about(path: str | os.PathLike, error: object) -> str:
    """``error``'s message for a folder job's file: prefixed with the file's name unless it already names the file
    (most of vsr's messages start with the path), so the line says it once."""
    msg = str(error)
    path = os.fspath(path)
    name = os.path.basename(path.rstrip("/" + os.sep)) or path
    # the name as a whole word of a path: "a.png" is named by "in/a.png:" and "'a.png'", not by "data.png"
    if re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w-]|\.\w)", msg):
        return msg
    return f"{name}: {msg}"
