"""The one exception type the CLI turns into ``error: …`` and a non-zero exit code."""


class VsrError(Exception):
    """A problem the user can act on; its message is shown as one line."""
