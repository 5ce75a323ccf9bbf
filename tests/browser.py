"""Real Chromium for tests and benchmarks: Debian's ``chromium`` driven by Playwright's
Python package (its bundled driver; no browser download, ``executable_path`` only).

The same functions take the README's screenshots: set ``CNNSEARCH_DOCS_SCREENSHOTS=docs/``
when running ``tests/search/test_browser.py`` and they also write ``docs/report.png``,
``docs/dashboard-lrrt.png`` and (``tests/search/views/test_model_card.py``)
``docs/model-card.png``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

CHROMIUM = Path(os.environ.get("CNNSEARCH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-dev-shm-usage",
]
DOCS_ENV = "CNNSEARCH_DOCS_SCREENSHOTS"
REPORT_VIEWPORT = {"width": 1280, "height": 1500}
DASHBOARD_VIEWPORT = {"width": 1400, "height": 1000}


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (Playwright ``Browser``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def docs_folder() -> Path | None:
    value = os.environ.get(DOCS_ENV)
    return Path(value) if value else None


def _also_to_docs(path: Path, name: str) -> None:
    folder = docs_folder()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / name)


@dataclass
class ReportView:
    seconds: float
    """From navigation start to the report's last script (every plot drawn)."""
    text: str
    plots: int
    offline_requests: list[str] = field(default_factory=list)
    """Requests to anything but the file itself (must stay empty: no network needed)."""


def open_report(browser: Any, path: Path, screenshot: Path | None = None) -> ReportView:
    """Open a report from disk with every non-file request blocked and recorded; wait until
    its plots are drawn; optionally screenshot the top of it (docs: ``report.png``)."""
    context = browser.new_context(viewport=REPORT_VIEWPORT, offline=True)
    page = context.new_page()
    blocked: list[str] = []

    def block(route: Any) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", block)
    started = time.perf_counter()
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_selector("body[data-report-ready]", timeout=30_000)
    seconds = time.perf_counter() - started
    page.wait_for_selector(".lrrt-figure .main-svg", timeout=30_000)
    view = ReportView(
        seconds=seconds,
        text=page.inner_text("body"),
        plots=page.locator(".js-plotly-plot").count(),
        offline_requests=blocked,
    )
    if screenshot is not None:
        page.screenshot(path=str(screenshot))
        _also_to_docs(screenshot, "report.png")
    context.close()
    return view


@dataclass
class CardView:
    text: str
    errors: list[str]
    """Console errors and uncaught page errors (must stay empty)."""
    offline_requests: list[str]
    confusion: list[list[int]]
    """The confusion matrix as the drawn heatmap holds it."""
    confusion_visible: bool
    wrong_images: int
    """Images of the confident-mistakes grid that loaded (naturalWidth > 0)."""
    per_class: list[list[str]]
    """The per-class table's rows, as shown."""


def open_model_card(browser: Any, path: Path, screenshot: Path | None = None) -> CardView:
    """Open a model card from disk offline, every console error recorded; wait until its
    confusion matrix is drawn."""
    context = browser.new_context(viewport=REPORT_VIEWPORT, offline=True)
    page = context.new_page()
    blocked: list[str] = []
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    def block(route: Any) -> None:
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", block)
    # generous: parsing the inlined plotly.js takes long on a loaded machine
    page.goto(path.resolve().as_uri(), wait_until="load", timeout=120_000)
    page.wait_for_selector("body[data-report-ready]", timeout=60_000)
    heatmap = page.locator("#confusion-matrix .main-svg").first
    heatmap.wait_for(state="visible", timeout=60_000)
    view = CardView(
        text=page.inner_text("body"),
        errors=errors,
        offline_requests=blocked,
        confusion=page.evaluate(
            "() => document.getElementById('confusion-matrix').data[0].z"),
        confusion_visible=heatmap.is_visible()
        and page.locator("#confusion-matrix .heatmaplayer image, #confusion-matrix "
                         ".hm").count() > 0,
        wrong_images=page.evaluate(
            "() => [...document.querySelectorAll('.wrong-grid img')]"
            ".filter(i => i.complete && i.naturalWidth > 0).length"),
        per_class=page.evaluate(
            "() => [...document.querySelectorAll('table.per-class tbody tr')]"
            ".map(r => [...r.cells].map(c => c.innerText))"),
    )
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=True)
        _also_to_docs(screenshot, "model-card.png")
    context.close()
    return view


def render_seconds(browser: Any, path: Path) -> float:
    """Navigation start to ``load`` + every plot drawn, as the page itself measures it
    (``performance.now()`` at the report's last script)."""
    context = browser.new_context(viewport=REPORT_VIEWPORT, offline=True)
    page = context.new_page()
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_selector("body[data-report-ready]", timeout=30_000)
    milliseconds = page.evaluate(
        "Number(document.body.getAttribute('data-report-ready-ms'))")
    context.close()
    return milliseconds / 1000


@dataclass
class Dashboard:
    url: str
    process: subprocess.Popen
    output: str = ""


@contextmanager
def dashboard(storage_url: str, *extra: str, cwd: Path | None = None,
              timeout: float = 60) -> Iterator[Dashboard]:
    """``cnnsearch dashboard --port 0`` in a real process; yields once its API answers."""
    env = {**os.environ, "CNNSEARCH_STORAGE": "", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "search", "dashboard", "--storage", storage_url, "--port", "0",
         *extra], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        seen, match = "", None
        while match is None:  # warnings (merged stderr) may come before the URL line
            line = process.stdout.readline()
            if not line:
                process.wait(timeout=30)
                raise AssertionError(f"dashboard did not start: {seen}")
            seen += line
            match = re.search(r"http://[^\s/]+:\d+/", line)
        url = match.group(0)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "api/studies", timeout=10) as reply:
                    json.loads(reply.read())
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield Dashboard(url=url, process=process, output=seen)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


@dataclass
class TrialPage:
    text: str
    plot_width: int
    """Natural width of the LRRT plot image in the trial's note (0: not loaded)."""
    thumbnails: list[str]
    """File names of the image artifacts in the trial's Artifacts card."""


def open_dashboard_home(browser: Any, base_url: str, study_name: str) -> str:
    """The dashboard's home page text, once it lists ``study_name``."""
    page = browser.new_page(viewport=DASHBOARD_VIEWPORT)
    page.goto(base_url + "dashboard", wait_until="networkidle")
    page.get_by_text(study_name, exact=False).first.wait_for(timeout=30_000)
    text = page.inner_text("body")
    page.close()
    return text


def open_dashboard_trial(browser: Any, base_url: str, study_id: int, number: int,
                         screenshot: Path | None = None) -> TrialPage:
    """A trial's page in the dashboard's trial list; waits for its LRRT plot (the image in
    the trial's note) to load; optionally screenshots it (docs: ``dashboard-lrrt.png``)."""
    page = browser.new_page(viewport=DASHBOARD_VIEWPORT)
    page.goto(f"{base_url}dashboard/studies/{study_id}/trials?numbers={number}",
              wait_until="networkidle")
    plot = page.locator('img[alt^="LR range test of"]').first
    plot.wait_for(state="visible", timeout=30_000)
    page.wait_for_function(
        "() => { const i = document.querySelector('img[alt^=\"LR range test of\"]');"
        " return i && i.complete && i.naturalWidth > 0; }", timeout=30_000)
    width = plot.evaluate("image => image.naturalWidth")
    thumbnails = page.locator('img[alt$=".svg"]').evaluate_all(
        "images => images.map(image => image.alt)")
    text = page.inner_text("body")
    if screenshot is not None:
        page.screenshot(path=str(screenshot))
        _also_to_docs(screenshot, "dashboard-lrrt.png")
    page.close()
    return TrialPage(text=text, plot_width=width, thumbnails=thumbnails)
