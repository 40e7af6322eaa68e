"""The page ``vsr compare`` writes: one HTML file that needs nothing else (no server, no network, no external script,
style or font; its Content-Security-Policy forbids loading anything but its own ``data:`` images).

Every picture is in one JSON block, each once (bicubic's frames sit beside every model's): whole frames as lossy WebP
(quality 90), crops and clip frames lossless, since they are for judging detail and flicker. A small inline script
puts them in place, moves the before/after splits and plays the clips, all models in step, at the video's rate.
"""

from __future__ import annotations

import base64
import html
import io
import json

import numpy as np

from vsr.compare import MAX_FULL, Page, Result, _clock, estimate

REFERENCE = ("not timed: the reference runs on torch in fp32, the same on every machine (vsr upscale -m bicubic "
             "runs on --backend)")
QUALITY = 90  # whole frames (lossy WebP)
WEBP_MAX = 16383  # pixels on a side; a larger picture goes as PNG


def data_uri(a: np.ndarray, lossless: bool) -> str:
    from PIL import Image

    buf = io.BytesIO()
    im = Image.fromarray(a)
    if max(a.shape[:2]) > WEBP_MAX:
        im.save(buf, "PNG", compress_level=6)
        kind = "png"
    elif lossless:
        im.save(buf, "WEBP", lossless=True, quality=80, method=4)
        kind = "webp"
    else:
        im.save(buf, "WEBP", quality=QUALITY, method=4)
        kind = "webp"
    return f"data:image/{kind};base64,{base64.b64encode(buf.getvalue()).decode()}"


def shown_full(frame: np.ndarray) -> tuple[np.ndarray, float]:
    """The whole frame as the page holds it, and the fraction of its size (1: as it is)."""
    h, w = frame.shape[:2]
    if h * w <= MAX_FULL:
        return frame, 1.0
    import cv2

    f = (MAX_FULL / (h * w)) ** 0.5
    return cv2.resize(frame, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA), f


def _fps(fps: float) -> str:
    return f"{fps:.2f}" if fps < 10 else f"{fps:.1f}"


def speed_text(page: Page, r: Result) -> tuple[str, str]:
    """(what was measured here, the estimate for the whole input)."""
    size = f"{page.width}×{page.height} → {page.width * page.scale}×{page.height * page.scale}"
    if page.kind == "image":
        return f"{r.seconds:.2f} s for this image here ({size}, timed after a warm-up tile)", ""
    here = (f"{_fps(r.fps)} fps here, timed on {r.timed} frame(s) of {size} after {max(r.warmup, 1)} warm-up "
            f"frame(s)")
    if not page.total or not r.fps:
        return here, "the video's length is not known: no estimate"
    return here, (f"the whole video, {page.total:,} frames: about {estimate(page.total / r.fps)} (an estimate: its "
                  "frames ÷ this speed; decoding, encoding and building an engine are not counted)")


def render(page: Page) -> str:
    images: dict[str, str] = {}
    ref = page.results[0]
    full_fraction = 1.0
    for r in page.results:
        full, full_fraction = shown_full(r.still)
        images[f"{r.key}-full"] = data_uri(full, lossless=False)
        for i, frames in enumerate(r.crops):
            for k, crop in enumerate(frames if i == 0 else frames[:1]):  # the clip is of the first crop
                images[f"{r.key}-c{i}-f{k}"] = data_uri(crop, lossless=True)
    e = html.escape
    video = page.kind == "video"
    name = page.input.name
    out_w, out_h = page.width * page.scale, page.height * page.scale
    where = f"; {page.shown} frame(s) from {_clock(page.start)} at {page.rate:g} fps" if video else ""
    crops_from = ("the crop given (--crop)" if page.chosen else
                  f"{'the crop' if len(page.windows) == 1 else f'{len(page.windows)} crops'} picked where "
                  "bicubic's frame has the most detail")
    parts = [f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'">
<title>vsr compare: {e(name)}</title>
<style>{STYLE}</style></head>
<body data-fps="{page.rate:g}" data-frames="{page.shown if video else 1}">
<header>
<h1>vsr compare: <code>{e(name)}</code></h1>
<p>{e(page.description)}; ×{page.scale} → {out_w}×{out_h}{e(where)}. On every slider the model is left of the line
and bicubic right of it: drag it, or click where it should be. The crops are at 100 %: {e(crops_from)}
(x, y, width × height in input pixels).</p>
<p class="note">Speeds were measured on this machine ({e(page.machine)}) while the page was made.</p>
<table class="summary"><thead><tr><th>model</th><th>{'speed here' if video else 'time here'}</th>
{'<th>the whole video (estimate)</th>' if video else ''}</tr></thead><tbody>"""]
    for r in [*page.results[1:], ref]:
        here = "-" if r.reference else f"{_fps(r.fps)} fps" if video else f"{r.seconds:.2f} s"
        whole = "" if not video else "<td>-</td>" if r.reference or not (page.total and r.fps) else \
            f"<td>about {e(estimate(page.total / r.fps))}</td>"
        label = f"{r.name} (the reference)" if r.reference else r.name
        parts.append(f'<tr><td><a href="#{r.key}">{e(label)}</a></td><td>{here}</td>{whole}</tr>')
    parts.append("</tbody></table></header>")
    if video and page.shown > 1:
        parts.append(f"""<div class="controls" id="controls">clips: <button id="play" type="button">pause</button>
<input id="frame" type="range" min="0" max="{page.shown - 1}" value="0" aria-label="frame">
<span id="fno">frame 1/{page.shown}</span>
<label>speed <select id="speed"><option value="1">1×</option><option value="0.5">½×</option>
<option value="0.25">¼×</option><option value="0.125">⅛×</option></select></label>
<label>crops <select id="zoom"><option value="1">100 %</option><option value="2">200 %</option>
<option value="3">300 %</option></select></label></div>""")
    else:
        parts.append("""<div class="controls" id="controls"><label>crops <select id="zoom"><option value="1">100 %
</option><option value="2">200 %</option><option value="3">300 %</option></select></label></div>""")
    for r in [*page.results[1:], ref]:
        parts.append(_section(page, r, ref, full_fraction))
    blob = json.dumps(images, separators=(",", ":")).replace("<", "\\u003c")
    parts.append(f'<script type="application/json" id="images">{blob}</script>\n<script>{SCRIPT}</script>')
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _slider(left_key: str, left: str, right_key: str, right: str, boxes: str = "", cls: str = "",
            style: str = "") -> str:
    e = html.escape
    return f"""<div class="cmp {cls}" style="--pos:50%;{style}">
<img class="under" data-key="{right_key}" alt="{e(right)}">
<img class="over" data-key="{left_key}" alt="{e(left)}">{boxes}<span class="split"></span>
<span class="lab l">{e(left)}</span><span class="lab r">{e(right)}</span>
<input type="range" min="0" max="100" step="0.1" value="50" aria-label="split between {e(left)} and {e(right)}">
</div>"""


def _section(page: Page, r: Result, ref: Result, fraction: float) -> str:
    e = html.escape
    video = page.kind == "video"
    here, whole = speed_text(page, r) if not r.reference else (REFERENCE, "")
    boxes = "".join(
        f'<span class="box" style="left:{100 * x / page.width:.3f}%;top:{100 * y / page.height:.3f}%;'
        f'width:{100 * w / page.width:.3f}%;height:{100 * h / page.height:.3f}%"><b>{i + 1}</b></span>'
        for i, (x, y, w, h) in enumerate(page.windows))
    most = f"max-width:{r.still.shape[1] * fraction:.0f}px"  # (never drawn larger than it is)
    scaled = f", shown at {100 * fraction:.0f} % (the crops below are 100 %)" if fraction < 1 else ""
    when = f"at {_clock(page.start)}" if video else ""
    out = [f'<section class="model{" reference" if r.reference else ""}" id="{r.key}" data-model="{e(r.name)}">',
           f"<h2>{e(r.name)}{' — the reference' if r.reference else ''}</h2>",
           f'<p class="line">{e(r.line)}</p>',
           f'<p class="speed">{e(here)}{"<br>" + e(whole) if whole else ""}</p>']
    if r.reference:
        out.append(f'<h3>whole frame {when}{scaled}</h3><div class="full"><div class="cmp single" style="{most}">'
                   f'<img class="under" data-key="{r.key}-full" alt="{e(r.name)}">{boxes}</div></div>')
    else:
        out.append(f'<h3>whole frame {when}{scaled} <button type="button" class="zoom-full">full size</button></h3>'
                   '<div class="full">' + _slider(f"{r.key}-full", r.name, f"{ref.key}-full", ref.name, boxes,
                                                  style=most) + "</div>")
        out.append('<h3>100 % crops</h3><div class="crops">')
        for i, (x, y, w, h) in enumerate(page.windows):
            out.append(f'<figure>{_slider(f"{r.key}-c{i}-f0", r.name, f"{ref.key}-c{i}-f0", ref.name, cls="crop")}'
                       f"<figcaption>{i + 1}: {x}, {y}, {w} × {h}</figcaption></figure>")
        out.append("</div>")
    if video and page.shown > 1:
        out.append(f"<h3>clip of crop 1: {page.shown} frames at the video's rate, looping (flicker shows here)</h3>"
                   '<div class="clips">')
        for c in ([r] if r.reference else [r, ref]):
            out.append(f'<figure><img class="clip" data-clip="{c.key}-c0" data-key="{c.key}-c0-f0" alt="{e(c.name)}">'
                       f"<figcaption>{e(c.name)}</figcaption></figure>")
        out.append("</div>")
    out.append("</section>")
    return "\n".join(out)


STYLE = """
:root{color-scheme:dark}
body{margin:0;padding:0 1.2em 2em;background:#202020;color:#ddd;font:14px/1.45 system-ui,sans-serif}
header{padding:.6em 0}
h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.2em;margin:1.4em 0 .2em}h3{font-size:1em;margin:1em 0 .4em}
code{font-size:1em}a{color:#8cf}p{margin:.3em 0;max-width:75em}.note,.line,.speed{color:#aaa}
table.summary{border-collapse:collapse;margin:.4em 0}.summary td,.summary th{padding:.1em .8em .1em 0;text-align:left}
.controls{position:sticky;top:0;z-index:5;background:#202020;padding:.4em 0;border-bottom:1px solid #444}
.controls label{margin-left:1em}
section.model{border-bottom:1px solid #444;padding-bottom:1em}
.full{overflow:auto;max-width:100%}
.cmp{position:relative;display:inline-block;line-height:0;user-select:none;vertical-align:top}
.full .cmp{width:100%}.full .cmp img{width:100%;height:auto}
.cmp img{display:block}.crop img,.clip{image-rendering:pixelated}
.cmp .over{position:absolute;top:0;left:0;clip-path:inset(0 calc(100% - var(--pos)) 0 0)}
.cmp .split{position:absolute;top:0;bottom:0;left:var(--pos);width:2px;margin-left:-1px;background:#fff;
box-shadow:0 0 2px #000;pointer-events:none}
.cmp{cursor:ew-resize;touch-action:pan-y}.cmp.single{cursor:auto}
.cmp input{position:absolute;inset:0;width:100%;height:100%;margin:0;opacity:0;pointer-events:none}
.cmp:focus-within .split{background:#8cf}
.lab{position:absolute;top:4px;padding:1px 5px;background:rgba(0,0,0,.6);color:#fff;font-size:12px;
line-height:1.5;pointer-events:none}.lab.l{left:4px}.lab.r{right:4px}
.box{position:absolute;border:1px solid #ff0;box-shadow:0 0 0 1px #000;pointer-events:none}
.box b{position:absolute;right:3px;bottom:2px;color:#ff0;font-size:12px;line-height:1.2;text-shadow:0 0 2px #000}
.crops,.clips{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
figure{margin:0}figcaption{color:#aaa;font-size:12px;margin-top:.2em}
"""

SCRIPT = """
(function () {
  "use strict";
  var IMG = JSON.parse(document.getElementById("images").textContent);
  document.querySelectorAll("img[data-key]").forEach(function (im) { im.src = IMG[im.dataset.key]; });
  document.querySelectorAll(".cmp").forEach(function (c) {
    var r = c.querySelector("input[type=range]");
    if (!r) return;
    var set = function () { c.style.setProperty("--pos", r.value + "%"); };
    var follow = function (ev) {  // the split goes where the pointer is (the range input has a thumb's margin)
      var b = c.getBoundingClientRect();
      r.value = Math.max(0, Math.min(100, (ev.clientX - b.left) / b.width * 100));
      set();
    };
    r.addEventListener("input", set);
    c.addEventListener("pointerdown", function (ev) {
      if (ev.button !== 0) return;
      c.setPointerCapture(ev.pointerId);
      follow(ev);
      r.focus();
      ev.preventDefault();
    });
    c.addEventListener("pointermove", function (ev) { if (c.hasPointerCapture(ev.pointerId)) follow(ev); });
    set();
  });
  document.querySelectorAll("button.zoom-full").forEach(function (b) {
    b.addEventListener("click", function () {
      var c = b.closest("section").querySelector(".full .cmp"), under = c.querySelector(".under");
      var on = !c.style.width;
      c.style.width = on ? under.naturalWidth + "px" : "";
      b.textContent = on ? "fit to the page" : "full size";
    });
  });
  var zoom = document.getElementById("zoom");
  var crops = Array.prototype.slice.call(document.querySelectorAll(".crop img, img.clip"));
  var sized = function () {
    crops.forEach(function (im) { if (im.naturalWidth) im.style.width = im.naturalWidth * Number(zoom.value) + "px"; });
  };
  crops.forEach(function (im) { im.addEventListener("load", sized, {once: true}); });
  zoom.addEventListener("change", sized);
  var n = Number(document.body.dataset.frames), fps = Number(document.body.dataset.fps) || 25;
  var play = document.getElementById("play");
  if (!play || n < 2) return;
  var clips = Array.prototype.slice.call(document.querySelectorAll("img[data-clip]"));
  var frame = document.getElementById("frame"), fno = document.getElementById("fno");
  var speed = document.getElementById("speed");
  var i = 0, timer = null;
  function show(k) {
    i = k;
    clips.forEach(function (im) { im.src = IMG[im.dataset.clip + "-f" + k]; });
    frame.value = k;
    fno.textContent = "frame " + (k + 1) + "/" + n;
  }
  function stop() { if (timer) clearInterval(timer); timer = null; play.textContent = "play"; }
  function start() {
    stop();
    timer = setInterval(function () { show((i + 1) % n); }, 1000 / (fps * Number(speed.value)));
    play.textContent = "pause";
  }
  play.addEventListener("click", function () { if (timer) stop(); else start(); });
  frame.addEventListener("input", function () { stop(); show(Number(frame.value)); });
  speed.addEventListener("change", function () { if (timer) start(); });
  start();
})();
"""
