"""Render `agentgym bench`'s HTML report in headless Chromium and check the screenshot (issue 6).

    python bench/report_screenshot.py                      # bench oracle, embedded, noop; render; check
    python bench/report_screenshot.py --report PATH.html   # render and check an existing report
    python bench/report_screenshot.py --record             # also keep bench/report_screenshot.png

In: a report.html written by `agentgym.benchmark.write_report` (made here by running `agentgym bench`
as a subprocess unless `--report` is given). Out: a full-page PNG under `--out` (default bench/out/),
and a verdict printed as JSON; exit 1 when any check fails, 2 when Chromium is missing (install it with
scripts/chromium_up.sh).

Three headless Chromium runs at a device scale factor of 1 and a fixed width: (1) a copy of the report
with a script that records, after the load event, the page height and each <img>'s box and natural
width into an attribute, read back with --dump-dom; (2) the report itself, file://, as a screenshot
of exactly that height (the full page); (3) a copy with `img{visibility:hidden}` — the same layout
with the plots left out. The checks: the PNG is width x page height; it is not blank (grey-level
standard deviation, non-white fraction); every image decoded (natural width > 0); inside every image
box the two renders differ and there are coloured pixels (the plots' bars and lines); outside the
boxes the two renders are the same, so what differs is the plots and nothing else. This module never
changes the report it renders.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LAYOUT_ATTR = "data-agentgym-layout"
LAYOUT_SCRIPT = f"""<script>addEventListener("load", () => {{
  const d = document.documentElement;
  const images = [...document.images].map((i) => {{
    const b = i.getBoundingClientRect();
    return {{alt: i.alt, x: b.left + scrollX, y: b.top + scrollY, w: b.width, h: b.height,
             natural_width: i.naturalWidth}};
  }});
  d.setAttribute("{LAYOUT_ATTR}", JSON.stringify({{width: d.scrollWidth, height: d.scrollHeight, images}}));
}});</script>"""
HIDE_IMAGES = "<style>img{visibility:hidden !important}</style>"
# A pixel is "coloured" when its channels spread this far (black text and grey rules spread ~0;
# matplotlib's default blue #1f77b4 spreads 149, orange #ff7f0e 241).
COLOUR_SPREAD = 60
# Two renders "differ" at a pixel when a channel moves by more than this (anti-aliasing noise is below).
DIFF_LEVEL = 24
# A plot is at least this many pixels a side and has this many coloured pixels (a broken-image icon
# with its alt text is about 180x20 with some 30 coloured pixels).
MIN_PLOT_SIDE = 100
MIN_COLOURED_PIXELS = 500


class ChromiumMissing(RuntimeError):
    """No Chromium binary on PATH."""


@dataclass(frozen=True)
class ImageBox:
    """One <img> as laid out on the page, in CSS pixels (= device pixels at scale factor 1)."""

    alt: str
    x: float
    y: float
    w: float
    h: float
    natural_width: int


@dataclass(frozen=True)
class PageLayout:
    """The page's full scroll size and its images, measured after the load event."""

    width: int
    height: int
    images: tuple[ImageBox, ...]


@dataclass
class ImageCheck:
    """What the screenshot shows inside one image's box."""

    alt: str
    box: tuple[int, int, int, int]
    coloured_pixels: int
    coloured_fraction: float
    """Share of the box's pixels that are coloured (plot bars, lines, legend swatches)."""
    differs_fraction: float
    """Share of the box's pixels that differ from the render with the images hidden."""


@dataclass
class ScreenshotCheck:
    """The measurements of one screenshot and every check it failed (none: `ok`)."""

    png: str
    size: tuple[int, int]
    expected_size: tuple[int, int]
    grey_std: float
    nonwhite_fraction: float
    outside_differs_fraction: float
    """Share of pixels outside every image box that differ from the hidden-images render."""
    images: list[ImageCheck] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def chromium_binary() -> str:
    """The Chromium on PATH, or ChromiumMissing saying how to install it."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise ChromiumMissing(
        f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)}); run scripts/chromium_up.sh"
    )


def _chromium(args: list[str], timeout_s: float = 90.0) -> str:
    """Run headless Chromium once with a throw-away profile; its stdout, or RuntimeError with stderr."""
    with tempfile.TemporaryDirectory(prefix="agentgym-chromium-") as profile:
        cmd = [
            chromium_binary(),
            "--headless",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            *(["--no-sandbox"] if os.geteuid() == 0 else []),  # Chromium refuses root without it
            *args,
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if res.returncode != 0:
        raise RuntimeError(f"chromium exited {res.returncode}: {res.stderr[-2000:]}")
    return res.stdout


def _variant(report: Path, extra: str, folder: Path, name: str) -> Path:
    """A copy of the report with `extra` inserted before </body> (the report is self-contained)."""
    page = report.read_text(encoding="utf-8")
    if "</body>" not in page:
        raise ValueError(f"{report} has no </body>")
    path = folder / name
    path.write_text(page.replace("</body>", extra + "</body>", 1), encoding="utf-8")
    return path


def measure(report: Path, width: int, folder: Path) -> PageLayout:
    """The report's full height and image boxes at `width` CSS pixels."""
    dom = _chromium(
        [
            f"--window-size={width},900",
            "--dump-dom",
            _variant(report, LAYOUT_SCRIPT, folder, "measure.html").as_uri(),
        ]
    )
    m = re.search(rf'{LAYOUT_ATTR}="([^"]*)"', dom)
    if not m:
        raise RuntimeError("the layout script left no measurement (did the page load?)")
    raw = json.loads(html.unescape(m.group(1)))
    boxes = tuple(ImageBox(**b) for b in raw["images"])
    return PageLayout(width=int(raw["width"]), height=int(raw["height"]), images=boxes)


def screenshot(page: Path, png: Path, width: int, height: int) -> Path:
    """A PNG of `page` at width x height CSS pixels."""
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)  # so a stale PNG never passes for a new one
    _chromium([f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri()])
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot at {png}")
    return png


def check(png: Path, hidden_png: Path, layout: PageLayout, width: int) -> ScreenshotCheck:
    """The checks of the module docstring on a screenshot and its hidden-images twin."""
    shot = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    hidden = np.asarray(Image.open(hidden_png).convert("RGB"), dtype=np.int16)
    h, w = shot.shape[:2]
    grey = shot.mean(axis=2)
    result = ScreenshotCheck(
        png=str(png),
        size=(w, h),
        expected_size=(width, layout.height),
        grey_std=float(grey.std()),
        nonwhite_fraction=float((grey < 245).mean()),
        outside_differs_fraction=0.0,
    )
    fail = result.failures.append
    if result.size != result.expected_size:
        fail(f"screenshot is {w}x{h}, expected {width}x{layout.height} (the full page)")
    if layout.width > width:
        fail(f"the page is {layout.width} px wide, wider than the {width} px window: its right side is cut")
    if hidden.shape != shot.shape:
        fail(f"hidden-images render is {hidden.shape[1]}x{hidden.shape[0]}, not {w}x{h}: layout moved")
        return result
    if result.grey_std < 10 or not 0.01 < result.nonwhite_fraction < 0.9:
        fail(f"looks blank: grey std {result.grey_std:.1f}, non-white {result.nonwhite_fraction:.3f}")
    if not layout.images:
        fail("the page has no <img> (expected the report's plots)")
    differs = np.abs(shot - hidden).max(axis=2) > DIFF_LEVEL
    coloured = (shot.max(axis=2) - shot.min(axis=2)) > COLOUR_SPREAD
    inside = np.zeros((h, w), dtype=bool)
    for b in layout.images:
        x0, y0 = max(0, int(b.x)), max(0, int(b.y))
        x1, y1 = min(w, int(np.ceil(b.x + b.w))), min(h, int(np.ceil(b.y + b.h)))
        box = (x0, y0, x1, y1)
        if x1 <= x0 or y1 <= y0:
            fail(f"image {b.alt!r} has an empty box {box}")
            continue
        inside[y0:y1, x0:x1] = True
        ic = ImageCheck(
            alt=b.alt,
            box=box,
            coloured_pixels=int(coloured[y0:y1, x0:x1].sum()),
            coloured_fraction=float(coloured[y0:y1, x0:x1].mean()),
            differs_fraction=float(differs[y0:y1, x0:x1].mean()),
        )
        result.images.append(ic)
        if b.natural_width <= 0:
            fail(f"image {b.alt!r} did not decode (natural width 0)")
        if ic.differs_fraction < 0.03:
            fail(f"image {b.alt!r}: its box looks the same with the image hidden ({ic.differs_fraction:.4f})")
        if ic.coloured_pixels < MIN_COLOURED_PIXELS or ic.coloured_fraction < 0.005:
            fail(f"image {b.alt!r}: no coloured plot marks in its box ({ic.coloured_pixels} px)")
        if min(x1 - x0, y1 - y0) < MIN_PLOT_SIDE:
            fail(f"image {b.alt!r} is {x1 - x0}x{y1 - y0} px, too small to be a plot")
    outside = ~inside
    result.outside_differs_fraction = float(differs[outside].mean()) if outside.any() else 0.0
    if result.outside_differs_fraction > 0.001:
        fail(f"outside the images the renders differ ({result.outside_differs_fraction:.4f}): layout moved")
    return result


def render_and_check(report: Path, out: Path, width: int = 1280) -> ScreenshotCheck:
    """Render `report` to out/report.png (full page) and out/report_noimg.png; check them."""
    report = report.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="agentgym-report-") as tmp:
        folder = Path(tmp)
        layout = measure(report, width, folder)
        png = screenshot(report, out / "report.png", width, layout.height)
        hidden = screenshot(
            _variant(report, HIDE_IMAGES, folder, "noimg.html"),
            out / "report_noimg.png",
            width,
            layout.height,
        )
    return check(png, hidden, layout, width)


def _bench(models: list[str], out: Path, args: argparse.Namespace) -> Path:
    cmd = [sys.executable, "-m", "agentgym", "bench", "--suite", args.suite, "--sample", str(args.sample),
           "--k", str(args.k), "--max-new-tokens", str(args.max_new_tokens), "--max-turns", str(args.max_turns),
           "--out", str(out)]  # fmt: skip
    for m in models:
        cmd += ["--model", m]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)
    return out / "report.html"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--report", type=Path, help="An existing report.html (else run agentgym bench).")
    p.add_argument("--model", action="append", help="Models to bench (default: oracle, embedded, noop).")
    p.add_argument("--suite", default="starter")
    p.add_argument("--sample", type=int, default=6)
    p.add_argument("--k", type=int, default=2)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--max-turns", type=int, default=4)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    p.add_argument("--record", action="store_true", help="Copy the PNG to bench/report_screenshot.png.")
    args = p.parse_args()
    try:
        chromium_binary()
    except ChromiumMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = args.report or _bench(args.model or ["oracle", "embedded", "noop"], args.out / "bench", args)
    result = render_and_check(report, args.out, args.width)
    print(json.dumps({**asdict(result), "ok": result.ok}, indent=2))
    if args.record and result.ok:
        record = ROOT / "bench" / "report_screenshot.png"
        shutil.copyfile(result.png, record)
        print(f"recorded {record} ({record.stat().st_size // 1024} KB)")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
