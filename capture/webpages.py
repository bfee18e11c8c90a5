"""Web tables styled by real CSS frameworks, rendered by headless Chromium.

``python -m capture.webpages OUT`` (``make devset``) writes the web
part of the development set: ``OUT/dev/``, ``OUT/heldout/`` and ``OUT/unseen/``, each picture
``NAME.png`` (or ``.jpg``) with ``NAME.csv`` (the table's numbers, an empty
field for an empty cell) and ``NAME.boxes.json`` (every cell's box from the
DOM, in picture pixels, device pixel ratio and any downscale included), the
dev bench's format (``data/bench/README.md``).

The split is by generator settings, not by seed: held-out pages use themes,
a framework and fonts that no finder rule was developed on; unseen pages use
five more frameworks (Pico, Pure, UIkit, Foundation, Spectre), each with its
own markup of every family, and fonts that the classifier never trained on.
"""

from __future__ import annotations

import argparse
import html
import io
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from gridreader.errors import GridReaderError
from gridreader.imageio import write_atomic

CSS_DIR = Path(__file__).resolve().parents[1] / "data" / "web-css"

FAMILIES = (
    "rules",
    "striped",
    "bordered",
    "dark",
    "small-hover",
    "pills",
    "borderless",
    "coloured-rows",
    "card",
    "caption",
    "page",
    "sheet",
)

# Development settings: the finder's rules may be developed on these.
DEV_THEMES = ("bootstrap.min.css", "bootswatch-flatly.min.css", "bootswatch-darkly.min.css")
DEV_FONTS = ("DejaVu Sans", "Liberation Sans", "Roboto", "Open Sans")
# Held out: measured on, never looked at while developing.
HELDOUT_THEMES = (
    "bootswatch-lux.min.css",
    "bootswatch-cyborg.min.css",
    "bootswatch-minty.min.css",
    "bootswatch-sketchy.min.css",
    "bulma.min.css",
)
HELDOUT_FONTS = ("Lato", "Inconsolata", "DejaVu Sans Mono", "Liberation Serif", "DejaVu Serif")
# Unseen: frameworks and fonts that neither a finder rule nor the classifier's
# training ever met (the fonts are in no training font list either).
UNSEEN_THEMES = (
    "pico.min.css",
    "pure-min.css",
    "uikit-core.min.css",
    "foundation.min.css",
    "spectre.min.css",
)
UNSEEN_FONTS = ("Clear Sans", "Cabin", "Anonymous Pro", "EB Garamond", "Oxygen Mono")
SPLITS = {
    "dev": (DEV_THEMES, DEV_FONTS),
    "heldout": (HELDOUT_THEMES, HELDOUT_FONTS),
    "unseen": (UNSEEN_THEMES, UNSEEN_FONTS),
}

_SCALES = (1.0, 1.0, 1.25, 1.5, 2.0)
_WINDOW = (1280, 900)
_COLOURS = ("primary", "secondary", "success", "danger", "warning", "info", "dark")
_HEADER_WORDS = (
    "Spin", "Red", "Black", "Odd", "Even", "Low", "High", "Dozen", "Column", "Zero",
    "Mon", "Tue", "Wed", "Thu", "Fri", "North", "South", "East", "West", "Total",
)  # fmt: skip
_PROSE = (
    "The wheel was spun {a} times today and {b} came up most often.",
    "Since {a} March the table has paid out {b} times; see the last results below.",
    "Numbers {a} and {b} are hot this week.",
)


@dataclass(frozen=True)
class Framework:
    """How one CSS framework marks up each family (its own classes, no inline style).

    Attributes:
        tables: table classes by family; ``""`` is the default.
        pill: a number in a badge or pill, with ``{colour}`` and ``{v}``.
        row: ``<tr>`` attributes of a coloured row, with ``{colour}``; empty
            where the framework has no row colours (rows stay plain).
        card: what the captured card holds, with ``{n}`` (results count) and
            ``{table}``; ``card_tag`` and ``card_class`` make the card itself.
        nav: the page's navigation bar.
        heading: class of the page's heading.
        dark_html: ``<html>`` attributes of the dark family.
        dark_box: class of the captured box of the dark family (an inverse
            section where the framework themes parts of a page).
        colours: the framework's names of :data:`_COLOURS`, in that order.
        card_tag, card_class: the card's element and class (none: ``""``).
    """

    tables: dict[str, str]
    pill: str
    row: str
    card: str
    nav: str
    heading: str = ""
    dark_html: str = ""
    dark_box: str = ""
    card_tag: str = "div"
    card_class: str = "card"
    colours: tuple[str, ...] = _COLOURS


BOOTSTRAP = Framework(
    tables={
        "": "table",
        "striped": "table table-striped",
        "bordered": "table table-bordered",
        "dark": "table table-dark",
        "small-hover": "table table-sm table-hover",
        "borderless": "table table-borderless",
        "sheet": "table table-bordered table-sm",
    },
    pill="<span class='badge rounded-pill text-bg-{colour}'>{v}</span>",
    row=" class='table-{colour}'",
    card="<div class='card-header'>Last {n} results</div><div class='card-body p-2'>{table}</div>",
    nav=(
        "<nav class='navbar navbar-expand bg-primary' data-bs-theme='dark'>"
        "<div class='container-fluid'><a class='navbar-brand' href='#'>Wheel 7</a>"
        "<span class='navbar-text'>Table 12</span></div></nav>"
    ),
)
BULMA = Framework(
    tables={
        "": "table",
        "striped": "table is-striped",
        "bordered": "table is-bordered",
        "small-hover": "table is-narrow is-hoverable",
        "sheet": "table is-bordered is-narrow",
    },
    pill="<span class='tag is-rounded is-{colour}'>{v}</span>",
    row=" class='has-background-{colour}-light'",
    card=(
        "<header class='card-header'><p class='card-header-title'>Last {n} results</p>"
        "</header><div class='card-content p-0'>{table}</div>"
    ),
    nav=(
        "<nav class='navbar is-dark'><div class='navbar-brand'><a class='navbar-item'>"
        "Wheel 7</a></div></nav>"
    ),
    heading="title",
    dark_html=" data-theme='dark'",
)
PICO = Framework(
    tables={"": "", "striped": "striped", "coloured-rows": "striped"},
    pill="<kbd>{v}</kbd>",
    row="",
    card="<header>Last {n} results</header>{table}",
    card_tag="article",
    card_class="",
    nav=(
        "<nav><ul><li><strong>Wheel 7</strong></li></ul>"
        "<ul><li><a href='#'>Table 12</a></li></ul></nav>"
    ),
    dark_html=" data-theme='dark'",
)
PURE = Framework(
    tables={
        "": "pure-table pure-table-horizontal",
        "striped": "pure-table pure-table-striped",
        "bordered": "pure-table pure-table-bordered",
        "sheet": "pure-table pure-table-bordered",
        "borderless": "pure-table",
        "dark": "pure-table",
    },
    pill="<span class='pure-button pure-button-primary'>{v}</span>",
    row="",
    card="<h3>Last {n} results</h3>{table}",
    card_class="",
    nav=(
        "<div class='pure-menu pure-menu-horizontal'>"
        "<a href='#' class='pure-menu-heading'>Wheel 7</a><ul class='pure-menu-list'>"
        "<li class='pure-menu-item'><a href='#' class='pure-menu-link'>Table 12</a></li>"
        "</ul></div>"
    ),
)
UIKIT = Framework(
    tables={
        "": "uk-table uk-table-divider",
        "striped": "uk-table uk-table-striped",
        "bordered": "uk-table uk-table-divider uk-table-justify",
        "dark": "uk-table uk-table-divider",
        "small-hover": "uk-table uk-table-small uk-table-hover uk-table-divider",
        "borderless": "uk-table",
        "sheet": "uk-table uk-table-small uk-table-divider",
    },
    pill="<span class='uk-badge'>{v}</span>",
    row="",
    card=(
        "<div class='uk-card-header'><h3 class='uk-card-title'>Last {n} results</h3></div>"
        "<div class='uk-card-body'>{table}</div>"
    ),
    card_class="uk-card uk-card-default",
    nav=(
        "<nav class='uk-navbar-container'><div class='uk-navbar-left'>"
        "<a class='uk-navbar-item uk-logo' href='#'>Wheel 7</a></div></nav>"
    ),
    heading="uk-heading-small",
    dark_box="uk-section-secondary uk-light",
)
FOUNDATION = Framework(
    tables={
        "": "unstriped",
        "striped": "",
        "bordered": "",
        "small-hover": "hover unstriped",
        "coloured-rows": "",
        "sheet": "",
    },
    pill="<span class='badge {colour}'>{v}</span>",
    row="",
    card="<div class='card-divider'>Last {n} results</div><div class='card-section'>{table}</div>",
    nav=(
        "<div class='top-bar'><div class='top-bar-left'><ul class='menu'>"
        "<li class='menu-text'>Wheel 7</li><li><a href='#'>Table 12</a></li></ul></div></div>"
    ),
    colours=("primary", "secondary", "success", "alert", "warning", "primary", "secondary"),
)
SPECTRE = Framework(
    tables={
        "": "table",
        "striped": "table table-striped",
        "small-hover": "table table-hover",
        "sheet": "table table-striped",
    },
    pill="<span class='label label-rounded label-{colour}'>{v}</span>",
    row=" class='active'",
    card=(
        "<div class='card-header'><div class='card-title h5'>Last {n} results</div></div>"
        "<div class='card-body'>{table}</div>"
    ),
    nav=(
        "<header class='navbar'><section class='navbar-section'>"
        "<a href='#' class='navbar-brand mr-2'>Wheel 7</a>"
        "<a href='#' class='btn btn-link'>Table 12</a></section></header>"
    ),
    colours=("primary", "secondary", "success", "error", "warning", "primary", "secondary"),
)


_FRAMEWORKS = {
    "bulma": BULMA,
    "pico": PICO,
    "pure": PURE,
    "uikit": UIKIT,
    "foundation": FOUNDATION,
    "spectre": SPECTRE,
}


@dataclass(frozen=True)
class PageSpec:
    """One page to render.

    Attributes:
        name: file stem.
        split: ``"dev"``, ``"heldout"`` or ``"unseen"`` (:data:`SPLITS`).
        css: file name of the framework's stylesheet in :data:`CSS_DIR`.
        family: the table style (one of :data:`FAMILIES`).
        font: CSS font family of the page.
        font_px: font size in CSS px.
        scale: device scale factor.
        values: the table body, ``""`` for an empty cell.
        header: column titles in a header row (words), or empty for none.
        jpeg: JPEG quality, or 0 for PNG.
        downscale: factor the screenshot is shrunk by (1.0: not at all).
    """

    name: str
    split: str
    css: str
    family: str
    font: str
    font_px: int
    scale: float
    values: tuple[tuple[str, ...], ...]
    header: tuple[str, ...] = ()
    jpeg: int = 0
    downscale: float = 1.0
    seed: int = 0

    @property
    def framework(self) -> Framework:
        """The framework whose stylesheet ``css`` is (Bootstrap and its themes by default)."""
        return next((f for k, f in _FRAMEWORKS.items() if self.css.startswith(k)), BOOTSTRAP)


# The committed set's settings seed (held-out pages: the next one).
DEVSET_SEED = 1401


def plan_pages(split: str, count: int, seed: int) -> list[PageSpec]:
    """``count`` page specs for ``split``, every family in turn, settings drawn
    from ``seed``."""
    themes, fonts = SPLITS[split]
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(count):
        family = FAMILIES[i % len(FAMILIES)]
        sheet = family == "sheet"
        rows = int(rng.integers(6, 15) if sheet else rng.integers(3, 13))
        cols = int(rng.integers(8, 15) if sheet else rng.integers(2, 11))
        empty = float(rng.choice([0.0, 0.05, 0.15]))
        values = tuple(
            tuple(
                "" if rng.random() < empty else str(int(rng.integers(0, 37))) for _ in range(cols)
            )
            for _ in range(rows)
        )
        header: tuple[str, ...] = ()
        if sheet:
            header = tuple(chr(ord("A") + c) for c in range(cols))
        elif rng.random() < 0.45:
            header = tuple(str(rng.choice(_HEADER_WORDS)) for _ in range(cols))
        post = rng.random()
        specs.append(
            PageSpec(
                name=f"web-{split}-{i:03d}",
                split=split,
                css=str(rng.choice(themes)),
                family=family,
                font=str(rng.choice(fonts)),
                font_px=int(rng.choice([11, 12, 13, 14, 16, 16, 18, 20]))
                if not sheet
                else int(rng.choice([11, 12, 13])),
                scale=float(rng.choice(_SCALES)),
                values=values,
                header=header,
                jpeg=int(rng.integers(70, 92)) if post < 0.2 else 0,
                downscale=float(rng.uniform(0.65, 0.9)) if 0.2 <= post < 0.35 else 1.0,
                seed=int(rng.integers(0, 2**31)),
            )
        )
    return specs


def page_html(spec: PageSpec) -> str:
    """The HTML of ``spec``'s page; the captured element is ``#capture``."""
    rng = np.random.default_rng(spec.seed)
    fw = spec.framework
    table = _table_html(spec, rng)
    font = f"font-family:'{spec.font}';font-size:{spec.font_px}px"
    if spec.family == "card":
        inner = fw.card.format(n=int(rng.integers(20, 500)), table=table)
        cls = f" class='{fw.card_class}'" if fw.card_class else ""
        body = (
            f"<{fw.card_tag} id='capture'{cls} style='display:inline-block;margin:16px'>"
            f"{inner}</{fw.card_tag}>"
        )
    elif spec.family == "page":
        a, b = int(rng.integers(2, 400)), int(rng.integers(0, 37))
        prose = str(rng.choice(_PROSE)).format(a=a, b=b)
        body = (
            f"<div id='capture' style='width:{_WINDOW[0] - 300}px'>{fw.nav}"
            f"<div class='container' style='padding:16px'>"
            f"<h2 class='{fw.heading}'>Results</h2><p>{html.escape(prose)}</p>{table}"
            "<p class='small'>Updated every 5 minutes.</p></div></div>"
        )
    else:
        box = f" class='{fw.dark_box}'" if spec.family == "dark" and fw.dark_box else ""
        body = f"<div id='capture'{box} style='display:inline-block;padding:12px'>{table}</div>"
    dark_html = fw.dark_html if spec.family == "dark" else ""
    # Frameworks that size text per element (cells, cards) get the page font there too.
    targets = "body,table,.table,.card,.navbar" + ("" if fw in (BOOTSTRAP, BULMA) else ",th,td,kbd")
    return (
        f"<!doctype html><html{dark_html}><head><meta charset='utf-8'>"
        f"<link rel='stylesheet' href='{spec.css}'>"
        f"<style>{targets}{{{font}}}</style>"
        f"</head><body style='margin:0'>{body}</body></html>"
    )


def _table_html(spec: PageSpec, rng: np.random.Generator) -> str:
    fam = spec.family
    fw = spec.framework
    cls = fw.tables.get(fam, fw.tables[""])
    width = "" if fam in ("page",) else " style='width:auto'"
    parts = [f"<table class='{cls} mb-0'{width}>"]
    if fam == "caption":
        n = int(rng.integers(5, 90))
        parts.append(f"<caption class='caption-top'>Results of table {n}, by spin</caption>")
    if spec.header:
        parts.append(
            "<thead><tr>" + "".join(f"<th>{h}</th>" for h in spec.header) + "</tr></thead>"
        )
    parts.append("<tbody>")
    for row in spec.values:
        tr = ""
        # The draws do not depend on the framework: a seed gives the same tables in each.
        if fam == "coloured-rows" and rng.random() < 0.6:
            colour = fw.colours[_COLOURS.index(str(rng.choice(_COLOURS[:6])))]
            tr = fw.row.format(colour=colour)
        cells = []
        for v in row:
            if fam == "pills" and v:
                colour = fw.colours[_COLOURS.index(str(rng.choice(_COLOURS)))]
                cells.append(f"<td>{fw.pill.format(colour=colour, v=v)}</td>")
            else:
                cells.append(f"<td>{v}</td>")
        parts.append(f"<tr{tr}>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


_CELLS_JS = """
const rows = document.querySelectorAll('#capture tbody tr');
return Array.from(rows).map(tr => Array.from(tr.children).map(td => {
  const r = td.getBoundingClientRect();
  return [r.left + window.scrollX, r.top + window.scrollY,
          r.right + window.scrollX, r.bottom + window.scrollY];
}));
"""


@dataclass(frozen=True)
class Rendered:
    """A rendered page: the picture's bytes and suffix, and its cell boxes."""

    data: bytes
    suffix: str
    boxes: list[list[list[float]]]
    size: tuple[int, int]


def render_pages(specs: Sequence[PageSpec], chromium: str, chromedriver: str) -> list[Rendered]:
    """Render every spec with headless Chromium, one browser per scale factor.

    Raises:
        CaptureError: the browser failed, or a page had no table.
    """
    from capture.browser import open_page, screenshot_element, start_browser, wait_fonts
    from capture.config import BrowserConfig
    from capture.samples import serve_directory

    out: dict[str, Rendered] = {}
    with tempfile.TemporaryDirectory(prefix="gridreader-webpages-") as tmp:
        root = Path(tmp)
        for css in sorted({s.css for s in specs}):
            shutil.copyfile(CSS_DIR / css, root / css)
        for spec in specs:
            write_atomic(root / f"{spec.name}.html", page_html(spec))
        with serve_directory(root) as base:
            for scale in sorted({s.scale for s in specs}):
                browser = start_browser(
                    BrowserConfig(window=_WINDOW, scale=scale, timeout_s=20.0),
                    chromium,
                    chromedriver,
                )
                try:
                    for spec in (s for s in specs if s.scale == scale):
                        open_page(browser.driver, f"{base}/{spec.name}.html", 20.0)
                        wait_fonts(browser.driver, 20.0)
                        shot = screenshot_element(browser.driver, "#capture")
                        cells = browser.driver.execute_script(_CELLS_JS)
                        out[spec.name] = _finish(spec, shot.png, shot.box, cells)
                finally:
                    browser.close()
    return [out[s.name] for s in specs]


def _finish(
    spec: PageSpec, png: bytes, origin: tuple[int, int, int, int], cells: list[list[list[float]]]
) -> Rendered:
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    f = spec.scale
    if spec.downscale != 1.0:
        h, w = img.shape[:2]
        size = (round(w * spec.downscale), round(h * spec.downscale))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        f *= spec.downscale
    boxes = [
        [
            [
                round((x0 - origin[0]) * f, 1),
                round((y0 - origin[1]) * f, 1),
                round((x1 - origin[0]) * f, 1),
                round((y1 - origin[1]) * f, 1),
            ]
            for x0, y0, x1, y1 in row
        ]
        for row in cells
    ]
    buf = io.BytesIO()
    if spec.jpeg:
        Image.fromarray(img).save(buf, "JPEG", quality=spec.jpeg)
        suffix = ".jpg"
    else:
        Image.fromarray(img).save(buf, "PNG", optimize=True)
        suffix = ".png"
    return Rendered(buf.getvalue(), suffix, boxes, (img.shape[1], img.shape[0]))


def write_page(folder: Path, spec: PageSpec, page: Rendered) -> None:
    """Write the picture, its truth CSV and its boxes JSON."""
    write_atomic(folder / f"{spec.name}{page.suffix}", page.data)
    write_atomic(folder / f"{spec.name}.csv", "".join(",".join(r) + "\n" for r in spec.values))
    meta = {
        "style": spec.family,
        "split": spec.split,
        "css": spec.css,
        "font": spec.font,
        "size": spec.font_px,
        "dpr": spec.scale,
        "scale": round(spec.downscale, 3),
        "jpeg": spec.jpeg,
        "header": bool(spec.header),
        "image_size": list(page.size),
        "rows": len(spec.values),
        "cols": len(spec.values[0]),
        "boxes": page.boxes,
    }
    write_atomic(folder / f"{spec.name}.boxes.json", json.dumps(meta))


def make_devset(
    out: Path,
    count: int,
    chromium: str,
    chromedriver: str,
    seed: int = DEVSET_SEED,
    splits: Sequence[str] = tuple(SPLITS),
) -> int:
    """Render ``count`` pages of each of ``splits`` under ``out/SPLIT/``
    (settings drawn from ``seed``, ``seed + 1`` and ``seed + 2`` for dev,
    held-out and unseen; the committed set's by default, others for fresh
    pages of the same families)."""
    written = 0
    for split in splits:
        specs = plan_pages(split, count, seed + list(SPLITS).index(split))
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for spec, page in zip(specs, render_pages(specs, chromium, chromedriver), strict=True):
            write_page(folder, spec, page)
            written += 1
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=48, help="pages per split")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument(
        "--seed",
        type=int,
        default=DEVSET_SEED,
        help=f"settings seed (default {DEVSET_SEED}: the committed set); another gives fresh pages",
    )
    parser.add_argument(
        "--splits",
        nargs="+",
        choices=tuple(SPLITS),
        default=tuple(SPLITS),
        help="which splits to render (default: all)",
    )
    args = parser.parse_args(argv)
    try:
        n = make_devset(
            args.out, args.count, args.chromium, args.chromedriver, args.seed, args.splits
        )
    except GridReaderError as e:
        print(f"webpages: error: {e}", file=sys.stderr)
        return 1
    print(f"{n} pages written under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
