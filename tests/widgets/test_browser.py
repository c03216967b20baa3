"""Notebook 06 in a real browser, as a student meets it: JupyterLab on localhost, headless Chromium
(Debian's ``chromium``, driven by Playwright with that executable), Run All, then the class slider
and the layer menu moved with keyboard and mouse. The overlay must change each time, and no widget
error ("Error displaying widget", "model not found") may appear. A screenshot is saved to
``build/test-artifacts/``.

Needs ``chromium`` and the ``playwright`` package; without them the test is skipped, unless
``FISHCAM_BROWSER_TESTS=required`` (``.ci/run`` sets it), when it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fishcam_utils.settings import course_root

pytestmark = [pytest.mark.browser, pytest.mark.notebook]

NOTEBOOK = "06_cam_explorer.ipynb"
WIDGET_ERRORS = ("Error displaying widget", "model not found")
RUN_ALL_TIMEOUT_S = 600


def _chromium() -> str | None:
    for candidate in (os.environ.get("FISHCAM_CHROMIUM"), "chromium", "chromium-browser"):
        path = candidate and shutil.which(candidate)
        if path:
            return path
    return None


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    if _chromium() is None:
        return "no chromium executable (apt-get install chromium, or set FISHCAM_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a free localhost port, serving a copy of notebook 06 (autosave cannot touch
    the checkout). Its kernels run in quick mode with the course's folders, as the notebooks do
    under nbval, so the models either of them trains serve both."""
    missing = _missing()
    if missing:
        if os.environ.get("FISHCAM_BROWSER_TESTS") == "required":
            pytest.fail(f"the browser test is required here, but {missing}")
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(course_root() / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "fishcam-browser-test"
    env = {**os.environ, "FISHCAM_QUICK": "1", "JUPYTER_CONFIG_DIR": str(root / ".jupyter"),
           "JUPYTERLAB_WORKSPACES_DIR": str(root / ".workspaces"), "JUPYTER_RUNTIME_DIR": str(root / ".runtime")}
    log = open(root / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}", "--ServerApp.allow_root=True",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None", "--ServerApp.open_browser=False"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"JupyterLab did not start: {(root / 'jupyterlab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield {"url": url, "token": token, "root": root}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _artifacts() -> Path:
    folder = course_root() / "build" / "test-artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wait_for_change(locator, before: bytes, timeout_s: float = 30) -> bytes:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = locator.screenshot()
        if now != before:
            return now
        time.sleep(0.25)
    raise AssertionError("the overlay did not change")


def test_notebook_06_runs_and_its_explorer_answers_in_a_real_browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        try:
            page.goto(f"{lab['url']}/lab/tree/{NOTEBOOK}?token={lab['token']}&reset")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                                   timeout=90_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            # Done when no cell waits or runs ("[*]") and the last code cell has an execution count.
            page.wait_for_function(
                """() => {
                    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                        .map(p => p.textContent.trim());
                    return prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:$/.test(t));
                }""", timeout=RUN_ALL_TIMEOUT_S * 1000, polling=1000)

            text = page.inner_text(".jp-Notebook")
            errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t.split("\n")[0]]
            assert not tracebacks, f"a cell failed in the browser:\n{tracebacks[0][:3000]}"
            for problem in WIDGET_ERRORS:
                assert problem not in text, f"the page shows {problem!r}"
            explorers = page.locator(".fishcam-explorer")
            assert explorers.count() == 3, "notebook 06 shows three explorers"

            explorer = explorers.first
            explorer.scroll_into_view_if_needed()
            overlay = explorer.locator(".fishcam-overlay-panel")
            overlay.wait_for(state="visible")
            page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=overlay.element_handle())
            before = overlay.screenshot()

            # The class slider, moved with the keyboard as a student might (ipywidgets 7 and 8
            # both give the slider handle keyboard focus).
            handle = explorer.locator(".fishcam-target .noUi-handle, .fishcam-target .ui-slider-handle").first
            handle.focus()
            handle.press("ArrowRight")
            handle.press("ArrowRight")
            try:
                after_class = _wait_for_change(overlay, before, timeout_s=10)
            except AssertionError:  # the image's class was the last: the slider can only go left
                handle.press("ArrowLeft")
                handle.press("ArrowLeft")
                handle.press("ArrowLeft")
                after_class = _wait_for_change(overlay, before)

            # The layer menu, chosen with the mouse: the first (finest) layer.
            select = explorer.locator(".fishcam-layer select")
            first_layer = select.locator("option").first.get_attribute("value")
            select.select_option(first_layer)
            _wait_for_change(overlay, after_class)
            caption = explorer.locator(".fishcam-heatmap-panel").locator("xpath=..").inner_text()
            assert first_layer in caption, caption

            status = explorer.locator(".fishcam-status")
            assert "fishcam-error" not in status.inner_html(), status.inner_text()
            text = page.inner_text(".jp-Notebook")
            for problem in WIDGET_ERRORS:
                assert problem not in text, f"the page shows {problem!r}"
            assert not [e for e in console_errors if any(p in e for p in WIDGET_ERRORS)], console_errors
            explorer.screenshot(path=str(_artifacts() / "explorer.png"))
        finally:
            page.screenshot(path=str(_artifacts() / "notebook06.png"), full_page=False)
            browser.close()
