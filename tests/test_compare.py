"""``vsr compare``: the page holds every model, needs nothing outside itself, and works in a real browser (Chromium
driven by Playwright, skipped where either is missing: .ci/run installs both)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from vsr.compare import crop_size, detail_windows, parse_time

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _tiny_models(folder: Path) -> tuple[Path, Path]:
    """Two test-size weight files: one that sees one frame (so the temporal stage runs after it) and a DIS-aligned
    3-frame window."""
    from conftest import small

    from vsr.weightfile import WeightInfo, save_weights

    files = []
    for name, frames in (("sr-lite", 1), ("mf-dis", 3)):
        m = small(name)
        files.append(save_weights(folder / f"tiny-{name}.safetensors", m,
                                  WeightInfo(f"tiny-{name}", m.arch, m.hparams, 2, frames)))
    return files[0], files[1]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """A small clip and an image, each compared: (page of the clip, page of the image, the model names)."""
    from PIL import Image

    from vsr._testclips import ClipSpec, make_clip, scene
    from vsr.cli import main

    d = tmp_path_factory.mktemp("compare")
    clip = make_clip(d / "clip.mp4", ClipSpec(width=96, height=64, frames=16, audio=False))
    Image.fromarray(scene(48, 64, 3)).save(d / "photo.png")
    one, three = _tiny_models(d)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VSR_CACHE", str(d / "cache"))
        assert main(["compare", str(clip), "-m", f"{one},{three}", "--frames", "3", "--backend", "torch", "-q"]) == 0
        assert main(["compare", str(d / "photo.png"), "-m", f"bicubic,{one}", "--backend", "torch", "-q"]) == 0
    return d / "clip_compare.html", d / "photo_compare.html", ["tiny-sr-lite", "tiny-mf-dis"]


def _images(text: str) -> dict[str, str]:
    return json.loads(re.search(r'<script type="application/json" id="images">(.*?)</script>', text, re.DOTALL).group(1))


def _size(uri: str) -> tuple[int, int]:
    from PIL import Image

    head, data = uri.split(",", 1)
    assert re.fullmatch(r"data:image/(webp|png);base64", head)
    return Image.open(io.BytesIO(base64.b64decode(data))).size


def test_the_page_is_one_file_with_every_model_next_to_bicubic(pages):
    clip_page, image_page, names = pages
    text = clip_page.read_text()
    # nothing outside the file: no URL, no external script, style or font; the page's policy forbids loading any
    assert not re.search(r"(?:https?|ftp):|//[\w.-]+\.\w|<link|@import|url\(|\ssrc=", text)
    assert "default-src 'none'; img-src data:" in text
    sections = re.findall(r'<section class="model[^"]*" id="(\w+)" data-model="([^"]+)"', text)
    assert [n for _, n in sections] == [*names, "bicubic"]
    images = _images(text)
    used = set(re.findall(r'data-key="([^"]+)"', text))
    assert used <= set(images)
    for key, _ in sections:  # each model: its whole frame ×2, and a clip of 3 frames of its crop
        assert _size(images[f"{key}-full"]) == (192, 128)
        assert [f"{key}-c0-f{k}" in images for k in range(4)] == [True, True, True, False]
        assert _size(images[f"{key}-c0-f2"]) == _size(images[f"{key}-c0-f0"])
    for name in names:  # its model line, its speed here, and the estimate for the whole clip
        section = text.split(f'data-model="{name}"', 1)[1].split("</section>", 1)[0]
        assert f"model {name} ×2" in section and "on torch" in section
        assert re.search(r"[\d.]+ fps here, timed on 3 frame\(s\)", section)
        assert re.search(r"the whole video, 16 frames: about \d+ s \(an estimate", section)
    assert "temporal stage on" in text.split('data-model="tiny-sr-lite"', 1)[1].split("</section>", 1)[0]
    image = image_page.read_text()
    assert [n for n in re.findall(r'data-model="([^"]+)"', image)] == ["tiny-sr-lite", "bicubic"]  # (named once)
    assert _size(_images(image)["m0-full"]) == (128, 96) and "s for this image here" in image


def test_crops_go_where_the_detail_is_and_never_overlap():
    rng = np.random.default_rng(0)
    frame = np.full((200, 300, 3), 128, np.uint8)  # ×2 of a flat frame with two textured patches, the first busier
    frame[40:80, 200:260] = rng.integers(0, 256, (40, 60, 3))  # (one window's size)
    frame[120:180, 20:100] = rng.integers(96, 160, (60, 80, 3))
    windows = detail_windows(frame, 2, (30, 20))
    assert windows[0] == (100, 20, 30, 20)  # on the first patch, in input pixels
    x, y, w, h = windows[1]  # within the second, the first being taken
    assert len(windows) == 2 and 10 <= x and x + w <= 50 and 60 <= y and y + h <= 90
    assert crop_size(1920, 1080, 2) == (192, 128) and crop_size(96, 64, 2) == (96, 64)


def test_the_frames_shown_are_those_at_the_time_asked_with_the_lead_in_before(tmp_path):
    """Seeking to a keyframe and decoding on gives the frames a decode from the start gives, at the time asked; the
    middle of the video by default, and an excerpt that would run past the end starts earlier."""
    from vsr._testclips import make_clip
    from vsr.compare import open_video, read_excerpt
    from vsr.video.source import frames_of

    clip = make_clip(tmp_path / "clip.mp4", width=64, height=48, frames=50, gop=5, audio=False)  # 25 fps, 2 s
    every = list(frames_of(clip))
    for at, first in ((1.0, 25), (None, 23), (1.9, 45)):
        ex = read_excerpt(open_video(clip, print), at, 4, 3)
        assert (ex.lead, ex.shown, round(ex.start * 25)) == (3, 4, first)
        assert len(ex.frames) == 3 + 4 + 1  # and the frame after them
        assert all(np.array_equal(a, b) for a, b in zip(ex.frames, every[first - 3:first + 5], strict=True))


def test_an_image_sequence_is_compared_as_a_video(tmp_path):
    """A film scan's folder of pictures is read as vsr upscale reads it (25 pictures a second): the excerpt is the
    pictures at the time asked, with the lead-in before."""
    from PIL import Image

    from vsr._testclips import scene
    from vsr.compare import kind_of, open_video, read_excerpt

    for i in range(40):
        Image.fromarray(scene(48, 64, i)).save(tmp_path / f"reel_{i}.png")
    assert kind_of(tmp_path) == "video"
    ex = read_excerpt(open_video(tmp_path, print), 1.0, 4, 2)
    assert (ex.lead, ex.shown, round(ex.start * 25), ex.total) == (2, 4, 25, 40)
    assert all(np.array_equal(a, scene(48, 64, i)) for a, i in zip(ex.frames, range(23, 30), strict=True))


def test_a_rotated_video_is_shown_as_players_show_it(tmp_path):
    """A phone's portrait video is stored landscape with a display rotation: the page (and --crop) are in the
    picture's own orientation. FFmpeg's rotation turns the stored frame counterclockwise for display."""
    import av

    from vsr.compare import open_video, read_excerpt

    stored = np.zeros((32, 64, 3), np.uint8)
    stored[:16] = 255  # the stored frame's top half is white
    with av.open(str(tmp_path / "phone.mp4"), "w") as out:
        s = out.add_stream("libx264", rate=25, options={"qp": "0"})
        s.width, s.height, s.pix_fmt = 64, 32, "yuv444p"
        s.set_display_rotation(90)
        for i in range(4):
            f = av.VideoFrame.from_ndarray(stored, format="rgb24")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode())
    ex = read_excerpt(open_video(tmp_path / "phone.mp4", print), 0.0, 2, 1)
    assert (ex.width, ex.height) == (32, 64) and ex.frames[0].shape == (64, 32, 3)
    assert ex.frames[0][:, :14].min() > 240 and ex.frames[0][:, 18:].max() < 15  # turned left: the top is on the left


def test_times_are_seconds_or_clock_readings():
    assert parse_time("90.5") == 90.5 and parse_time("1:30.5") == 90.5 and parse_time("1:02:03") == 3723


def test_what_cannot_be_compared_is_one_line(tmp_path, cli):
    from vsr._testclips import make_clip

    clip = make_clip(tmp_path / "clip.mp4", width=64, height=48, frames=6, audio=False)
    (tmp_path / "notes.txt").write_text("not a video")
    cases = [
        (["notes.txt"], "not a video or an image"),
        (["clip.mp4", "-m", "no-such-model"], "unknown model 'no-such-model'"),
        (["clip.mp4", "-m", "realesr-general-x4v3"], "run `vsr models pull realesr-general-x4v3`"),
        (["clip.mp4", "-m", "bicubic", "--at", "10"], "past the end of the video"),
        (["clip.mp4", "-m", "bicubic", "--crop", "40,0,32,32"], "not inside the 64×48 frame"),
        (["clip.mp4", "-m", "bicubic", "--at", "1:2:3:4"], "use seconds"),
    ]
    for args, message in cases:
        rc, _, err = cli("compare", *[tmp_path / a if a.endswith((".txt", ".mp4")) else a for a in args], "-q")
        assert rc == 1 and message in err and err.count("\n") == 1 and "Traceback" not in err, (args, err)
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob(".*tmp*"))  # nothing left behind
    rc, _, err = cli("compare", clip, "-m", "bicubic", "--backend", "torch")  # not quiet: what it wrote, said
    assert rc == 0 and "wrote clip_compare.html" in err.replace(str(tmp_path) + "/", ""), err
    rc, _, err = cli("compare", clip, "-m", "bicubic", "--backend", "torch", "-q")
    assert rc == 1 and "pass --overwrite" in err


# ------------------------------------------------------------------ in a browser


def _chromium() -> str:
    pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (pip install playwright)")
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        pytest.skip("the browser test needs Chromium (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A fresh headless Chromium whose pages may load their own file and data: URIs and nothing else; every other
    request is refused and recorded."""
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    refused: list[str] = []

    def only_the_file(route):
        url = route.request.url
        if url.startswith(("file://", "data:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        context.route("**/*", only_the_file)
        yield context, refused
        context.close()


def _open(browser, page_path: Path):
    context, refused = browser
    page = context.new_page()
    problems, requests = [], []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url[:80]} {r.failure}"))
    page.on("request", lambda r: requests.append(r.url))
    url = page_path.resolve().as_uri()
    page.goto(url, wait_until="load")
    page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    return page, problems, [r for r in requests if r != url and not r.startswith("data:")] + refused


def _split(page, section: str) -> dict:
    """Where the first slider of a section splits: its line's x and the top picture's clip, in CSS pixels."""
    return page.evaluate("""s => {
        const c = document.querySelector(`section[data-model="${s}"] .cmp`);
        const box = c.getBoundingClientRect(), line = c.querySelector('.split').getBoundingClientRect();
        const shown = c.querySelector('.over').getBoundingClientRect();
        return {left: box.left, width: box.width, top: box.top, height: box.height, line: line.left + line.width / 2,
                clip: getComputedStyle(c.querySelector('.over')).clipPath};
    }""", section)


def test_the_page_in_a_browser(pages, browser):
    clip_page, image_page, names = pages
    page, problems, outside = _open(browser, clip_page)
    assert not problems and not outside, (problems, outside)
    shown = page.eval_on_selector_all("section.model h2", "hs => hs.map(h => h.textContent)")
    assert [s.split(" ")[0] for s in shown] == [*names, "bicubic"]
    assert page.eval_on_selector_all("img", "is => is.every(i => i.naturalWidth > 0)")
    for name in names:
        page.locator(f'section[data-model="{name}"] .cmp').first.scroll_into_view_if_needed()
        before = _split(page, name)
        assert abs(before["line"] - (before["left"] + before["width"] / 2)) <= 2  # the split starts in the middle
        # drag the split to a quarter of the picture with the mouse
        x, y = before["left"] + before["width"] / 2, before["top"] + before["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(before["left"] + before["width"] / 4, y, steps=5)
        page.mouse.up()
        after = _split(page, name)
        assert abs(after["line"] - (before["left"] + before["width"] / 4)) <= 3, (before, after)
        assert after["clip"] != before["clip"]
        # and by setting the slider's value, as a keyboard or a script does
        page.evaluate("""s => { const r = document.querySelector(`section[data-model="${s}"] .cmp input`);
                              r.value = 90; r.dispatchEvent(new Event('input', {bubbles: true})); }""", name)
        moved = _split(page, name)
        assert abs(moved["line"] - (moved["left"] + 0.9 * moved["width"])) <= 3
    # the clips play: every clip picture shows each of the 3 frames in turn
    seen = page.evaluate("""() => new Promise(done => {
        const clips = Array.from(document.querySelectorAll('img[data-clip]')), seen = clips.map(() => new Set());
        const t = setInterval(() => clips.forEach((c, i) => seen[i].add(c.getAttribute('src'))), 10);
        setTimeout(() => { clearInterval(t); done(seen.map(s => s.size)); }, 600);
    })""")
    assert len(seen) == 2 * len(names) + 1 and all(n == 3 for n in seen), seen
    page.close()
    page, problems, outside = _open(browser, image_page)
    assert not problems and not outside, (problems, outside)
    assert page.eval_on_selector_all("section.model", "s => s.map(x => x.dataset.model)") == ["tiny-sr-lite", "bicubic"]
    page.close()
