"""``vsr build-engine`` and ``vsr engines``: compile ahead of time, and look after the engine cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vsr.auto import CLEAN
from vsr.cli.app import ModelOpt, PrecisionOpt, ScaleOpt, app, load_runner
from vsr.errors import VsrError


@app.command("build-engine")
def build_engine(
    model: ModelOpt = None,
    scale: ScaleOpt = None,
    backend: Annotated[str, typer.Option(help="openvino | tensorrt")] = "openvino",
    height: Annotated[Optional[int], typer.Option(min=1, help="input (low-resolution) height")] = None,
    width: Annotated[Optional[int], typer.Option(min=1, help="input (low-resolution) width")] = None,
    input: Annotated[Optional[Path], typer.Option("--input", help="a video or image to take the input size from")] = None,
    precision: PrecisionOpt = "auto",
    video: Annotated[bool, typer.Option(help=f"without -m: {CLEAN}, vsr upscale's model for clean input (--no-video: "
                                             "vsr image's default)")] = True,
    sixteen: Annotated[bool, typer.Option("--16-bit", help="for 10- to 16-bit input (default: 8-bit)")] = False,
) -> None:
    """Compile a model ahead of time for an input size; a second call is a cache hit.

    Example: vsr build-engine -m mf-fast -s 2 --height 480 --width 854
    """
    import time

    if backend not in ("openvino", "tensorrt"):
        raise VsrError(f"build-engine compiles for openvino or tensorrt, not {backend!r}")
    if input is not None:
        height, width = _input_size(input)
    if not height or not width:
        raise VsrError("give --height and --width (the input size), or --input FILE")
    t0 = time.perf_counter()
    runner, info = load_runner(model, scale, "video" if video else "image", backend, precision, quiet=True,
                               shape=(height, width), io="u16" if sixteen else "u8", announce=True)
    entry, hit = runner.last_build
    took = time.perf_counter() - t0
    state = "cache hit" if hit else "built"
    print(f"{state}: {info.name} ×{info.scale} for {width}×{height} input, {runner.name} {runner.precision}, {took:.2f} s")
    print(f"engine: {entry}")


def _input_size(path: Path) -> tuple[int, int]:
    from vsr.formats import IMAGE_EXTS

    if path.suffix.lower() in IMAGE_EXTS:
        from vsr.picture import picture_size

        w, h = picture_size(path)
        return h, w
    from vsr.video.source import open_source

    src = open_source(path, stream=None, fps=25)
    src.close()
    return src.info.height, src.info.width


@app.command()
def engines(
    clear: Annotated[bool, typer.Option("--clear", help="delete every cached engine")] = False,
    max_size: Annotated[Optional[str], typer.Option(
        "--max-size", help="remove the least recently used engines until the cache fits in SIZE (e.g. 500M, 2G); "
                           "new engines trim it to $VSR_CACHE_MAX (default 2G, 0 = no cap)")] = None,
) -> None:
    """List the compiled engines in the cache, most recently used last (or trim it, or empty it).

    Example: vsr engines --max-size 500M
    """
    import datetime

    from rich.console import Console
    from rich.table import Table

    from engines import cache

    if clear:
        n = cache.clear()
        print(f"removed {n} cache entr{'y' if n == 1 else 'ies'} from {cache.engines_dir()}")
        return
    cap = cache.max_bytes()
    if max_size is not None:
        try:
            limit = cache.parse_size(max_size)
        except ValueError as e:
            raise VsrError(f"--max-size: {e}") from None
        removed = cache.prune(limit, spare_held=False)  # asked for: whatever this process may have used
        print(f"removed {len(removed)} least recently used entr{'y' if len(removed) == 1 else 'ies'} "
              f"({cache.human(sum(e['size'] for e in removed))})")
    rows = sorted(cache.entries(), key=lambda e: e["used"])
    console = Console()
    table = Table(title=f"engine cache: {cache.engines_dir()}")
    wide = console.width >= 140  # else four columns, each cell on two lines, rather than seven folded to fit
    columns = (("model", "scale", "runtime", "precision", "shape / profile", "size", "last used") if wide
               else ("model", "engine", "size", "last used"))
    for col in columns:
        table.add_column(col)
    for e in rows:
        k = e.get("key", {})
        if k.get("shape"):
            shape = "×".join(map(str, k["shape"]))
        elif k.get("profile"):
            shape = str(k["profile"])
        else:  # an exported graph: any size
            shape = f"{k.get('runtime', '?')} {k.get('io', '')}".strip()
        cells = [e["name"], f"×{k.get('scale', '?')}", str(k.get("runtime", "?")), str(k.get("precision", "-")), shape]
        when = datetime.datetime.fromtimestamp(e["used"])
        if wide:
            table.add_row(*cells, cache.human(e["size"]), when.strftime("%Y-%m-%d %H:%M"))
        else:
            engine = shape if not (k.get("shape") or k.get("profile")) else f"{cells[2]} {cells[3]}\n{shape}"
            table.add_row(" ".join(cells[:2]), engine, cache.human(e["size"]), when.strftime("%Y-%m-%d\n%H:%M"))
    console.print(table)
    total = sum(e["size"] for e in rows)
    print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}, {cache.human(total)}"
          + (f" of {cache.human(cap)} (VSR_CACHE_MAX)" if cap else ", no cap (VSR_CACHE_MAX=0)"))
