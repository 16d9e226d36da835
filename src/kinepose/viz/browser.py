"""Headless Chromium for local HTML pages (the 3D viewer): screenshots, JavaScript results, console errors.

Chromium is the system's (Debian's ``chromium`` package, or ``$KINEPOSE_CHROMIUM``), driven by the Python
``playwright`` package (``pip install kinepose[browser]``) through ``executable_path``: no browser is
downloaded and ``playwright install`` is never needed. WebGL renders on the CPU through SwiftShader
(``--use-angle=swiftshader --enable-unsafe-swiftshader``), so no GPU or display is needed either. Each call
starts a fresh browser with a fresh temporary profile, and the page is offline: a request that leaves the
machine fails and is listed in :attr:`HeadlessPage.requests`.

Example::

    from kinepose.viz.browser import screenshot
    screenshot("walk.html", "walk.png", before="kineposeViewer.setFrame(20)")
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinepose._atomic import atomic_write
from kinepose.errors import FileFormatError, KineposeError

__all__ = [
    "CHROMIUM_ARGS",
    "CHROMIUM_ENV",
    "BrowserError",
    "HeadlessPage",
    "find_chromium",
    "open_page",
    "run_js",
    "screenshot",
    "unavailable_reason",
]

#: Environment variable naming the Chromium (or Chrome) executable to use.
CHROMIUM_ENV = "KINEPOSE_CHROMIUM"
#: Executables looked up on ``PATH`` when :data:`CHROMIUM_ENV` is not set.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Flags for a headless run as root in a container, offline, WebGL on SwiftShader (``--headless`` and a fresh
#: ``--user-data-dir`` are added by Playwright).
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: The default wait: the document loaded and, on a viewer page, its first frame rendered or its error set.
VIEWER_READY = (
    "document.readyState === 'complete' && "
    "(!window.kineposeViewer || window.kineposeViewer.ready === true || !!window.kineposeViewer.error)"
)
_LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


class BrowserError(RuntimeError):
    """Chromium or Playwright is missing, or a page failed (the message says which and why)."""


def find_chromium() -> str | None:
    """The Chromium executable: ``$KINEPOSE_CHROMIUM``, else the first of :data:`CHROMIUM_NAMES` on ``PATH``."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return shutil.which(env)
    for name in CHROMIUM_NAMES:
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def unavailable_reason() -> str | None:
    """None when pages can be rendered here, else why not (for a ``pytest.skip`` or an error message)."""
    env = os.environ.get(CHROMIUM_ENV)
    if find_chromium() is None:
        if env:
            return f"${CHROMIUM_ENV}={env!r} is not an executable"
        return (f"Chromium not found (install Debian's chromium package, or set ${CHROMIUM_ENV}); "
                f"looked for {', '.join(CHROMIUM_NAMES)} on PATH")  # fmt: skip
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package 'playwright' is not installed (pip install 'kinepose[browser]')"
    return None


@dataclass
class HeadlessPage:
    """A page open in headless Chromium (see :func:`open_page`).

    Attributes:
        page: the Playwright ``Page``, for anything not wrapped here (``page.keyboard``, ``page.fill`` ...).
        console_errors: ``console.error`` messages and failed loads, in order.
        page_errors: uncaught exceptions, in order.
        requests: URLs of every request that was not local (``file:``, ``data:``, ``blob:``); all of them fail.
    """

    page: Any
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Page errors, then console errors."""
        return self.page_errors + self.console_errors

    def evaluate(self, script: str, arg: Any = None) -> Any:
        """Run a JavaScript expression or function (``"() => ..."``) and return its JSON-able result;
        a returned Promise is awaited."""
        return self.page.evaluate(script, arg)

    def next_frames(self, n: int = 2) -> None:
        """Wait for ``n`` animation frames, so that what the page drew last is on screen."""
        self.page.evaluate(
            "n => new Promise(done => { const f = k => (k ? requestAnimationFrame(() => f(k - 1)) : done()); f(n); })",
            n,
        )

    def screenshot(self) -> bytes:
        """A PNG of the viewport."""
        return self.page.screenshot(type="png")


@contextmanager
def open_page(
    html_path: str | os.PathLike,
    width: int = 1000,
    height: int = 700,
    wait_for: str | None = VIEWER_READY,
    timeout: float = 60.0,
) -> Iterator[HeadlessPage]:
    """Open a local HTML file in a fresh headless Chromium; close the browser on exit.

    Args:
        html_path: the page (opened as a ``file://`` URL).
        width, height: the viewport in CSS pixels (device scale factor 1).
        wait_for: a JavaScript expression to wait for (truthy) after loading; default :data:`VIEWER_READY`.
        timeout: seconds for loading and for ``wait_for`` each.

    Raises:
        BrowserError: no Chromium or Playwright (:func:`unavailable_reason`), or the page did not load or get
            ready in time (with the errors it logged).
        ValueError: ``html_path`` does not exist.
    """
    reason = unavailable_reason()
    if reason:
        raise BrowserError(reason)
    path = Path(html_path).resolve()
    if not path.is_file():
        raise FileFormatError("html_path: cannot read (no such file)", str(path))
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=find_chromium(), headless=True, args=list(CHROMIUM_ARGS))
        except PlaywrightError as exc:
            raise BrowserError(f"cannot start {find_chromium()}: {exc}") from exc
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
            context.set_offline(True)
            page = context.new_page()
            hp = HeadlessPage(page)
            page.on("console", lambda m: hp.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: hp.page_errors.append(str(e)))
            page.on("request", lambda r: None if r.url.startswith(_LOCAL_SCHEMES) else hp.requests.append(r.url))
            try:
                page.goto(path.as_uri(), timeout=timeout * 1000, wait_until="load")
                if wait_for:
                    page.wait_for_function(wait_for, timeout=timeout * 1000)
            except PlaywrightError as exc:
                raise BrowserError(f"{path}: did not load or get ready ({exc}); page errors: {hp.errors}") from exc
            yield hp
        finally:
            browser.close()


def run_js(
    html_path: str | os.PathLike, script: str, width: int = 1000, height: int = 700, timeout: float = 60.0
) -> tuple[Any, list[str]]:
    """Open a page, run ``script`` (an expression or a function, see :meth:`HeadlessPage.evaluate`) once it is
    ready, and return ``(result, errors)``: the JSON-able result and every page and console error logged."""
    with open_page(html_path, width, height, timeout=timeout) as hp:
        value = hp.evaluate(script)
        return value, hp.errors


def screenshot(
    html_path: str | os.PathLike,
    png_path: str | os.PathLike,
    width: int = 1000,
    height: int = 700,
    before: str | None = None,
    timeout: float = 60.0,
    wait_for: str | None = VIEWER_READY,
) -> None:
    """Write a PNG of a page (atomically), e.g. of a viewer page for the docs.

    Args:
        html_path: the page.
        png_path: the PNG to write.
        width, height: the viewport in pixels.
        before: JavaScript run once the page is ready, before the shot (e.g.
            ``"kineposeViewer.setFrame(20)"``); a returned Promise is awaited.
        timeout: seconds for loading and for ``before``.
        wait_for: as :func:`open_page` (None for pages other than the viewer, e.g. a report).

    Raises:
        BrowserError: as :func:`open_page`, and when the page logged an error or a viewer failed to render.
        ValueError: ``png_path`` does not end in ``.png``, ``html_path`` does not exist.
    """
    if os.path.splitext(os.fspath(png_path))[1].lower() != ".png":
        raise KineposeError(f"png_path: {os.fspath(png_path)}: expected a .png file")
    with open_page(html_path, width, height, wait_for=wait_for, timeout=timeout) as hp:
        if before:
            hp.evaluate(before)
        hp.next_frames()
        viewer_error = hp.evaluate("window.kineposeViewer ? window.kineposeViewer.error : null")
        errors = ([f"viewer: {viewer_error}"] if viewer_error else []) + hp.errors
        if errors:
            raise BrowserError(f"{html_path}: the page logged errors: {errors}")
        png = hp.screenshot()
    atomic_write(png_path, lambda f: f.write(png), binary=True)
