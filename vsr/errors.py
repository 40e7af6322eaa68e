"""The exception types the CLI turns into one line and an exit code."""


class VsrError(Exception):
    """A problem the user can act on; its message is shown as one line."""


class Stopped(Exception):
    """A run ended early on request (Ctrl-C, SIGTERM): nothing was left at the output path. ``kept``: segments a
    long job's work folder keeps for the next run (``folder``), of ``total``."""

    def __init__(self, kept: int = 0, total: int = 0, folder=None, output=None):
        super().__init__("stopped")
        self.kept, self.total, self.folder, self.output = kept, total, folder, output


def about(path, error: BaseException | str) -> str:
    """An error about one file of many, naming the file once: prefixed with its name unless it already says it."""
    text = str(error)
    name = getattr(path, "name", str(path))
    return text if str(path) in text or name in text else f"{name}: {text}"
