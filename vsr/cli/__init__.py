"""The ``vsr`` command line: one module per command, registered on :data:`vsr.cli.app.app`."""

from __future__ import annotations

import os
import sys
import warnings

import typer

from vsr.cli import bench, compare, engines, eval, image, models, upscale  # noqa: F401 - each registers its command
from vsr.cli.app import app, is_user_error, say


def _format_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _format_warning  # one plain line per warning
    try:
        rc = app(args=argv, prog_name="vsr", standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        say("interrupted")
        return 130
    except typer.TyperException as e:  # usage errors: one line too
        if type(e).__name__ == "NoArgsIsHelpError":
            print(e.format_message())
            return 0
        say(f"error: {e.format_message()}")
        return getattr(e, "exit_code", 2)
    except Exception as e:
        if is_user_error(e):
            say(f"error: {e}")
            return 1
        if os.environ.get("VSR_DEBUG"):  # a bug: still one line, with a way to see the traceback
            raise
        say(f"error: unexpected {type(e).__name__}: {e} (set VSR_DEBUG=1 for the traceback)")
        return 1
    return rc if isinstance(rc, int) else 0


__all__ = ["app", "main"]
