"""Screenshot of a damage map's ``map.html`` in headless Chromium, offline.

Checks that the interactive map of ``torchgeo-quake map`` works as the reader gets
it, a file opened from disk with no network:

1. the page is a damage map (it holds the ``DATA`` object), embeds the post-event
   SAR image as its underlay and asks for no basemap;
2. Chromium, headless, opens it as a ``file://`` URL with the network cut off (a
   proxy that does not exist, no host name resolves) and renders it to a PNG,
   recording every request in a network log: the page must make no network request;
3. two more renders, with the panels hidden, with and without the underlay (a copy
   of the page whose ``DATA.sar`` is null), tell what the script drew: buildings in
   the map's colours, and under them the SAR image (grey, textured) over a good
   part of the window.

Usage::

    torchgeo-quake map ... --out maps/nurdagi
    python docs/scripts/screenshot_map.py maps/nurdagi/map.html --out shots/map.png

Exit status 0 when the map passes, 1 when it fails, and 77 (with a message) when no
Chromium is installed: install Debian's ``chromium`` package (or set ``CHROMIUM``
to the browser's path) to run it. ``--colors 256`` saves the screenshot with a
palette of 256 colours (after the checks), small enough for the documentation.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot import (
    add_size_options,
    find_chromium,
    no_chromium,
    render,
    save_palette,
)

#: Browser flags that cut the network off: every request goes to a proxy that
#: does not exist (loopback included) and no host name resolves.
OFFLINE = (
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
#: Virtual time given to the page's script (ms): the SAR image is decoded and
#: drawn on the next animation frame.
BUDGET_MS = 5000
#: What starts and ends the page's data object.
DATA_START, DATA_END = "var DATA = ", ";</script>"
#: URL schemes that reach the network.
NETWORK_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
#: Style hiding the panel, the buttons, the scale and the credits.
NO_BOXES = "<style>.box { display: none !important; }</style>"
#: Smallest share of the window covered by buildings, and by the SAR underlay.
MIN_BUILDINGS, MIN_UNDERLAY = 0.005, 0.05


def page_data(text: str) -> dict[str, Any]:
    """The data object of a ``map.html``.

    Args:
        text: the page

    Returns:
        ``DATA``: outlines, probabilities, colours, ``basemap``, ``sar``...

    Raises:
        ValueError: If the page holds no such object.
    """
    start = text.find(DATA_START)
    end = text.find(DATA_END, start)
    if start < 0 or end < 0:
        raise ValueError("not a damage map: no 'var DATA = ...' in the page")
    data: dict[str, Any] = json.loads(text[start + len(DATA_START) : end])
    return data


def variant(text: str, *, underlay: bool, boxes: bool) -> str:
    """A copy of a ``map.html`` for the checks.

    Args:
        text: the page
        underlay: keep the SAR underlay (else ``DATA.sar`` is null)
        boxes: keep the panel, buttons, scale and credits (else hidden)

    Returns:
        The page changed accordingly.
    """
    if not underlay:
        start = text.find(DATA_START) + len(DATA_START)
        end = text.find(DATA_END, start)
        data = page_data(text)
        data["sar"] = None
        fields = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
        text = text[:start] + fields + text[end:]
    if not boxes:
        text = text.replace("</head>", NO_BOXES + "</head>", 1)
    return text


def page_problems(name: str, data: dict[str, Any]) -> list[str]:
    """Problems of a ``map.html`` that its data object shows.

    Args:
        name: the page's name, for the messages
        data: its :func:`page_data`

    Returns:
        A missing SAR underlay (``DATA.sar``) and a basemap (tiles fetched from
        the network), if so.
    """
    problems = []
    if not data.get("sar"):
        problems.append(f"{name}: no SAR underlay in the page (DATA.sar)")
    if data.get("basemap"):
        problems.append(f"{name}: the page fetches basemap tiles from the network")
    return problems


def render_offline(
    chromium: str,
    page: Path,
    png: Path,
    width: int,
    height: int,
    netlog: Path | None = None,
) -> None:
    """Render a page, opened from disk with the network cut off, to a PNG.

    Args:
        chromium: browser executable
        page: the HTML file
        png: output file
        width: window width in pixels
        height: window height in pixels
        netlog: where Chromium writes its network log, or None for none

    Raises:
        RuntimeError: If Chromium fails or writes no screenshot.
    """
    flags: tuple[str, ...] = (*OFFLINE, f"--virtual-time-budget={BUDGET_MS}")
    if netlog is not None:
        flags += (f"--log-net-log={netlog}", "--net-log-capture-mode=Default")
    render(chromium, page, png, width, height, flags)


def page_requests(netlog: Path) -> list[str]:
    """Network requests that a page made, from Chromium's network log.

    The browser's own requests (updates, time, accounts: those with no page as
    initiator) are left out.

    Args:
        netlog: the log written with ``--log-net-log``

    Returns:
        The URLs with a network scheme (http, https, ws, wss, ftp), in order.
    """
    log = json.loads(netlog.read_text(encoding="utf-8"))
    names = {code: name for name, code in log["constants"]["logEventTypes"].items()}
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if names.get(event["type"]) != "URL_REQUEST_START_JOB" or "url" not in params:
            continue
        if params.get("initiator") == "not an origin":  # the browser's own
            continue
        if urlsplit(params["url"]).scheme in NETWORK_SCHEMES:
            urls.append(params["url"])
    return urls


def _rgb(color: str) -> tuple[int, int, int]:
    """``#rrggbb`` as a tuple of integers."""
    value = int(color.lstrip("#"), 16)
    return value >> 16, (value >> 8) & 255, value & 255


def building_pixels(
    image: npt.NDArray[np.int64], data: dict[str, Any]
) -> npt.NDArray[np.bool_]:
    """Pixels painted in the map's building colours.

    Args:
        image: screenshot, (rows, cols, 3)
        data: the page's data object (``colors``, ``skipped_color``)

    Returns:
        True where a pixel is within 6 of a colour of the probability ramp that
        is not a grey, or of the colour of buildings not scored.
    """
    palette = np.array([_rgb(c) for c in data["colors"]])
    palette = palette[np.ptp(palette, axis=1) >= 30]
    palette = np.vstack([palette, _rgb(data["skipped_color"])])
    packed = (image[..., 0] << 16) | (image[..., 1] << 8) | image[..., 2]
    values, inverse = np.unique(packed, return_inverse=True)
    rgb = np.stack([values >> 16, (values >> 8) & 255, values & 255], axis=1)
    near = (np.abs(rgb[:, None, :] - palette[None, :, :]).max(axis=2) <= 6).any(1)
    return np.asarray(near[inverse.reshape(packed.shape)])


def check_map(
    shot: Path, panels_off: Path, bare: Path, data: dict[str, Any]
) -> list[str]:
    """Problems visible in the renders of a ``map.html``.

    Args:
        shot: the page as it is
        panels_off: the page with its panels hidden
        bare: the page with its panels hidden and without the underlay
        data: the page's data object

    Returns:
        Problems found (empty when the map looks drawn).
    """
    image = np.asarray(Image.open(shot).convert("RGB")).astype(np.int64)
    plain = np.asarray(Image.open(panels_off).convert("RGB")).astype(np.int64)
    without = np.asarray(Image.open(bare).convert("RGB")).astype(np.int64)
    problems = []
    if image.std() < 5:
        problems.append(f"{shot.name}: the page is blank")
    buildings = building_pixels(without, data).mean()
    if buildings < MIN_BUILDINGS:
        problems.append(
            f"{shot.name}: no buildings drawn ({buildings:.2%} of the window in "
            "the map's colours): the page's script did not run or drew nothing"
        )
    changed = np.abs(plain - without).max(axis=2) > 8
    if changed.mean() < MIN_UNDERLAY:
        problems.append(
            f"{shot.name}: the SAR underlay is not drawn ({changed.mean():.1%} of "
            "the window differs from the page without it)"
        )
    else:
        pixels = plain[changed]
        grey = (np.ptp(pixels, axis=1) <= 12).mean()
        if grey < 0.7 or pixels.mean(axis=1).std() < 10:
            problems.append(
                f"{shot.name}: what is drawn under the buildings is not a SAR "
                f"image ({grey:.0%} grey, brightness std "
                f"{pixels.mean(axis=1).std():.1f})"
            )
    return problems


def shoot_map(
    chromium: str, page: Path, png: Path, width: int = 1200, height: int = 800
) -> list[str]:
    """Render a ``map.html`` offline and check it.

    Args:
        chromium: browser executable
        page: the map's HTML file
        png: output screenshot of the page as it is
        width: window width in pixels
        height: window height in pixels

    Returns:
        Problems found (empty when the map passes).
    """
    text = page.read_text(encoding="utf-8")
    try:
        data = page_data(text)
    except ValueError as error:
        return [f"{page}: {error}"]
    problems = page_problems(page.name, data)
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        netlog = folder / "netlog.json"
        jobs: list[tuple[Path, Path, Path | None]] = [(page, png, netlog)]
        for name, underlay in (("panels_off", True), ("bare", False)):
            copy = folder / f"{name}.html"
            copy.write_text(
                variant(text, underlay=underlay, boxes=False), encoding="utf-8"
            )
            jobs.append((copy, folder / f"{name}.png", None))
        # Three browsers at once: each spends most of its time starting.
        with ThreadPoolExecutor(len(jobs)) as pool:
            list(
                pool.map(
                    lambda job: render_offline(
                        chromium, job[0], job[1], width, height, job[2]
                    ),
                    jobs,
                )
            )
        requests = page_requests(netlog)
        if requests:
            problems.append(
                f"{page.name}: the page made {len(requests)} network requests "
                f"(none when opened offline), e.g. {', '.join(requests[:3])}"
            )
        problems += check_map(png, jobs[1][1], jobs[2][1], data)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path, help="the map.html of torchgeo-quake map")
    parser.add_argument(
        "--out", type=Path, default=Path("map.png"), help="the PNG (default map.png)"
    )
    add_size_options(parser, width=1200, height=800)
    args = parser.parse_args(argv)

    chromium = find_chromium()
    if chromium is None:
        return no_chromium()
    if not args.page.is_file():
        parser.error(f"{args.page} is not a file")
    problems = shoot_map(chromium, args.page, args.out, args.width, args.height)
    if args.colors and args.out.exists():
        save_palette(args.out, args.colors)
    print(f"{args.page} -> {args.out}")
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
