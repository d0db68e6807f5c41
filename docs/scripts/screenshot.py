"""Screenshots of the built documentation site in headless Chromium.

Checks that the site renders in a browser, not only that MkDocs builds it:

1. every page asked for exists in the built site, and every stylesheet, script and
   image it references (``href``/``src`` of ``link``, ``script`` and ``img``) is a
   file of the site, so nothing shows up unstyled or as a broken image;
2. Chromium, headless, renders each page to a PNG;
3. each PNG is checked: the Material header bar is drawn in the theme's primary
   colour (the stylesheet was applied) and the page is not blank.

Usage::

    python -m mkdocs build --strict -d /tmp/site
    python docs/scripts/screenshot.py /tmp/site --out /tmp/shots      # Home, Quickstart
    python docs/scripts/screenshot.py /tmp/site --out /tmp/shots index.html data.html

Exit status 0 when all pages pass, 1 when one fails, and 77 (with a message) when no
Chromium is installed, as on CI machines without a browser: install Debian's
``chromium`` package (or set ``CHROMIUM`` to the browser's path) to run it. Look at
the PNGs: the checks catch missing styles, scripts and images, not every
layout problem. ``--colors 256`` saves the PNGs with a palette of 256 colours (after
the checks), small enough for the documentation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
from PIL import Image

#: Pages shot by default: the two the documentation issue asks for.
DEFAULT_PAGES = ("index.html", "quickstart.html")
#: Exit status for "not run" (the convention of automake and pytest plugins).
SKIPPED = 77
#: Material's ``indigo`` primary colour (``palette.primary`` in mkdocs.yml).
HEADER_RGB = (0x3F, 0x51, 0xB5)
#: Browser flags for a closed network and a root user, without a display.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


def find_chromium() -> str | None:
    """Path of a Chromium or Chrome executable.

    Returns:
        ``$CHROMIUM`` if set, else the first of chromium, chromium-browser,
        google-chrome on ``PATH``; None when there is none.
    """
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class _Resources(HTMLParser):
    """Collects the local stylesheets, scripts and images of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "link" and values.get("rel") == "stylesheet":
            url = values.get("href")
        elif tag in ("script", "img"):
            url = values.get("src")
        else:
            return
        if url and not urlsplit(url).scheme and not url.startswith("//"):
            self.urls.append(url)


def missing_resources(site: Path, page: str) -> list[str]:
    """Local resources that a page references but the site lacks.

    Args:
        site: folder of the built site
        page: page path relative to *site*, e.g. ``quickstart.html``

    Returns:
        The missing URLs, as written in the page.
    """
    path = site / page
    parser = _Resources()
    parser.feed(path.read_text(encoding="utf-8"))
    missing = []
    for url in parser.urls:
        target = (path.parent / unquote(urlsplit(url).path)).resolve()
        if not target.is_file():
            missing.append(url)
    return missing


def render(
    chromium: str,
    page: Path,
    png: Path,
    width: int,
    height: int,
    flags: tuple[str, ...] = (),
) -> None:
    """Render an HTML file, opened from disk (``file://``), to a PNG.

    Args:
        chromium: browser executable
        page: the HTML file
        png: output file (an older one is removed first)
        width: window width in pixels
        height: window height in pixels
        flags: browser flags beside :data:`FLAGS` (e.g. to cut the network off)

    Raises:
        RuntimeError: If Chromium fails or writes no screenshot.
    """
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        command = [
            chromium,
            *FLAGS,
            *flags,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png.resolve()}",
            page.resolve().as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not png.exists():
        raise RuntimeError(
            f"Chromium could not render {page} (exit {result.returncode}):\n"
            f"{result.stderr[-2000:]}"
        )


def shoot(
    chromium: str, site: Path, page: str, png: Path, width: int, height: int
) -> None:
    """Render a page of the site to a PNG.

    Args:
        chromium: browser executable
        site: folder of the built site
        page: page path relative to *site*
        png: output file
        width: window width in pixels
        height: window height in pixels

    Raises:
        RuntimeError: If Chromium fails or writes no screenshot.
    """
    render(chromium, site / page, png, width, height)


def check_png(png: Path) -> list[str]:
    """Problems visible in a screenshot of a page of the site.

    Args:
        png: the screenshot

    Returns:
        Problems found (empty when the page looks rendered).
    """
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    problems = []
    header = image[5:40, :]  # the top bar, 48 px high in Material
    share = (np.abs(header - HEADER_RGB).max(axis=2) <= 12).mean()
    if share < 0.5:
        problems.append(
            f"{png.name}: the header is not drawn in the theme colour "
            f"({share:.0%} of its pixels): the stylesheet was not applied"
        )
    body = image[60:, :]
    if body.std() < 5:
        problems.append(f"{png.name}: the page below the header is blank")
    return problems


def save_palette(png: Path, colors: int) -> None:
    """Save a screenshot again with a palette, smaller (for the documentation).

    Args:
        png: the screenshot, overwritten
        colors: number of colours of the palette (at most 256)
    """
    image = Image.open(png).convert("RGB")
    image = image.quantize(
        colors=colors, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE
    )
    image.save(png, format="PNG", optimize=True)


def add_size_options(parser: argparse.ArgumentParser, width: int, height: int) -> None:
    """Add ``--width``, ``--height`` and ``--colors`` to a command's parser.

    Args:
        parser: the command's parser
        width: default window width in pixels
        height: default window height in pixels
    """
    parser.add_argument("--width", type=int, default=width, help=f"default {width}")
    parser.add_argument("--height", type=int, default=height, help=f"default {height}")
    parser.add_argument(
        "--colors",
        type=int,
        default=None,
        help="save the PNGs with a palette of this many colours (after the checks)",
    )


def no_chromium() -> int:
    """Say that no browser was found, and how to get one.

    Returns:
        :data:`SKIPPED`, the exit status for "not run".
    """
    print(
        "SKIPPED: no Chromium found (install Debian's chromium package or set "
        "CHROMIUM to the browser's path)",
        file=sys.stderr,
    )
    return SKIPPED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, help="folder of the built site")
    parser.add_argument(
        "pages",
        nargs="*",
        default=list(DEFAULT_PAGES),
        help=f"pages to shoot (default: {' '.join(DEFAULT_PAGES)})",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("screenshots"), help="folder for the PNGs"
    )
    add_size_options(parser, width=1280, height=2400)
    args = parser.parse_intermixed_args(argv)

    chromium = find_chromium()
    if chromium is None:
        return no_chromium()
    if not (args.site / "index.html").is_file():
        parser.error(
            f"{args.site} is not a built site (no index.html): run "
            f"python -m mkdocs build --strict -d {args.site}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for page in args.pages:
        if not (args.site / page).is_file():
            problems.append(f"{page}: not in the built site")
            continue
        problems += [
            f"{page}: {url} is referenced but not in the site"
            for url in missing_resources(args.site, page)
        ]
        png = args.out / (page.replace("/", "_").removesuffix(".html") + ".png")
        shoot(chromium, args.site, page, png, args.width, args.height)
        problems += check_png(png)
        if args.colors:
            save_palette(png, args.colors)
        print(f"{page} -> {png}")
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
