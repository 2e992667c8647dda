"""JupyterLab in headless Chromium: notebook 02's attention explorer renders and redraws through the kernel.

Starts the venv's JupyterLab on a free loopback port (config, data and runtime folders in a temporary folder,
autosave off, the venv's ``--sys-prefix`` kernel), opens notebooks/02 (never saved), runs it in fast mode,
checks the explorer's layout at a 1400 px window, moves the image slider with the keyboard and waits for the
figure to change. Screenshot: runs/browser/02_attention_explorer.png. Needs Debian's chromium (``make browser``,
run by ``make setup``) and playwright (the test extra); skips with the reason when either is missing.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/02_attention_visualisation.ipynb"
SHOT = ROOT / "runs" / "browser" / "02_attention_explorer.png"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium hangs on refused connections (no internet on CI).
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SETTINGS = {  # JupyterLab user settings: never save the tracked notebook, no news or update checks
    "docmanager-extension/plugin": {"autosave": False},
    "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "notebook-extension/tracker": {"windowingMode": "none"},  # every cell in the DOM
}
START_S, RUN_S, REDRAW_S = 120, 300, 60  # a loaded 2-core CI machine: kernel start, fast-mode run, one redraw

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="no chromium: `make browser` installs Debian's (root)"),
]

# "error: ..." when an output holds an error, "done" when every code cell ran and the kernel is idle, else "".
RUN_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext.session) return "";
  const cells = panel.content.widgets.filter(c => c.model.type === "code");
  for (const c of cells) {
    const err = c.model.outputs.toJSON().find(o => o.output_type === "error");
    if (err) return `error: ${err.ename}: ${err.evalue}`;
  }
  const idle = panel.sessionContext.session.kernel?.status === "idle";
  return idle && cells.every(c => c.model.executionCount !== null) ? "done" : "";
}"""
EXPLORER = ".jp-CodeCell:has(.widget-label:text-is('head (-1=mean)'))"  # a Playwright selector
CELL = ("[...document.querySelectorAll('.jp-CodeCell')].find(c => [...c.querySelectorAll('.widget-label')]"
        ".some(l => l.textContent === 'head (-1=mean)'))")
FIGURE_SRC = f"() => ({CELL})?.querySelector('.widget-output img')?.src ?? null"
# Per slider of the explorer: label text, label cut off?, track width and right edge; and the cell's right edge.
LAYOUT = f"""() => {{
  const out = ({CELL}).querySelector(".jp-OutputArea");
  return {{right: out.getBoundingClientRect().right, sliders: [...out.querySelectorAll(".widget-slider")].map(s => {{
    const label = s.querySelector(".widget-label");
    const track = s.querySelector(".slider-container").getBoundingClientRect();
    return {{label: label.textContent, cut: label.scrollWidth > label.clientWidth,
             width: track.width, right: track.right}};
  }})}};
}}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(url: str, token: str, method: str = "GET"):
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        body = r.read()
    return json.loads(body) if body else None


@pytest.fixture
def lab(tmp_path):
    """(base url, token) of a JupyterLab on the repository; its kernels and the server stopped afterwards."""
    for name, values in SETTINGS.items():
        path = tmp_path / "config" / "lab" / "user-settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    token, port = secrets.token_hex(16), _free_port()
    # The data dir moves too; the venv's kernel stays findable under sys.prefix/share/jupyter.
    env = {**os.environ, "KDAS_FAST": "1", "OMP_NUM_THREADS": "1", "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_DATA_DIR": str(tmp_path / "data"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}",
           "--LabApp.expose_app_in_browser=True"] + (["--allow-root"] if os.geteuid() == 0 else [])
    log = tmp_path / "lab.log"
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_S
        while True:
            assert server.poll() is None, f"jupyter lab exited:\n{log.read_text()[-3000:]}"
            try:
                _api(f"{url}/api/status", token)
                break
            except OSError:
                assert time.monotonic() < deadline, f"jupyter lab not up in {START_S} s:\n{log.read_text()[-3000:]}"
                time.sleep(0.5)
        assert "python3" in _api(f"{url}/api/kernelspecs", token)["kernelspecs"], "the venv's kernel is not found"
        yield url, token
    finally:
        try:
            for kernel in _api(f"{url}/api/kernels", token) or []:
                _api(f"{url}/api/kernels/{kernel['id']}", token, method="DELETE")
        except OSError:
            pass
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait(page, js: str, ok, timeout_s: float, what: str, arg=None):
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(js, arg) if arg is not None else page.evaluate(js)
        if ok(value):
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s (last: {value!r})"
        time.sleep(0.5)


def test_attention_explorer_redraws_in_jupyterlab(lab):
    url, token = lab
    notebook = ROOT / NOTEBOOK
    digest = hashlib.sha256(notebook.read_bytes()).hexdigest()
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/lab/tree/{NOTEBOOK}?token={token}", timeout=START_S * 1000)
            page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel"
                                   "?.status === 'idle'", timeout=START_S * 1000)
            t0 = time.perf_counter()
            page.evaluate("() => { const c = window.jupyterapp.commands; c.execute('notebook:clear-all-cell-outputs')"
                          ".then(() => c.execute('notebook:run-all-cells')); }")
            state = _wait(page, RUN_STATE, bool, RUN_S, "running notebook 02")
            assert state == "done", state
            run_s = time.perf_counter() - t0
            first = _wait(page, FIGURE_SRC, bool, REDRAW_S, "the explorer's figure")

            layout = page.evaluate(LAYOUT)  # the issue: 14 px tracks in one row, "head (-1=mean)" cut off
            sliders = layout["sliders"]
            assert [s["label"] for s in sliders] == ["image", "stage", "head (-1=mean)", "query y", "query x"]
            assert not [s["label"] for s in sliders if s["cut"]], sliders
            assert min(s["width"] for s in sliders) >= 80, sliders
            assert max(s["right"] for s in sliders) <= layout["right"] + 1, layout

            handle = page.locator(f"{EXPLORER} .widget-slider:has(.widget-label:text-is('image')) .noUi-handle")
            handle.focus()
            t1 = time.perf_counter()
            page.keyboard.press("ArrowRight")  # image 0 -> 1: the kernel recomputes the attention and redraws
            _wait(page, f"(before) => ({FIGURE_SRC})() !== before && ({FIGURE_SRC})() !== null", bool, REDRAW_S,
                  "a redraw after moving the image slider", arg=first)
            redraw_s = time.perf_counter() - t1
            assert page.locator(f"{EXPLORER} .widget-slider:has(.widget-label:text-is('image')) .widget-readout")\
                .inner_text().strip() == "1"
            page.locator(EXPLORER).scroll_into_view_if_needed()
            SHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOT))
        finally:
            browser.close()
    print(f"notebook 02 ran in {run_s:.1f} s, redraw {redraw_s:.2f} s, screenshot {SHOT}; console errors: {errors}")
    assert not [e for e in errors if "widget" in e.lower()], errors
    assert hashlib.sha256(notebook.read_bytes()).hexdigest() == digest, "the tracked notebook was modified"


STUDY_FIGURE = """() => {
  const cell = [...document.querySelectorAll('.jp-CodeCell')].find(c => c.textContent.includes('plot_arms(summary'));
  const img = cell?.querySelector('.jp-OutputArea img');
  if (!img || !img.complete || !img.naturalWidth) return null;
  const box = img.getBoundingClientRect(), area = cell.querySelector('.jp-OutputArea').getBoundingClientRect();
  return {left: box.left, right: box.right, width: box.width, areaLeft: area.left, areaRight: area.right};
}"""


def test_notebook_04_study_figure_is_an_image_inside_its_cell(lab):
    """The committed outputs of notebook 04, as a learner first sees them (nothing run): the study figure is an
    image (not the text of a figure) and fits the cell at a 1400 px window."""
    url, token = lab
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/notebooks/04_ablations.ipynb?token={token}", timeout=START_S * 1000)
            box = _wait(page, STUDY_FIGURE, bool, START_S, "notebook 04's study figure")
        finally:
            browser.close()
    assert box["width"] > 300, box
    assert box["areaLeft"] - 1 <= box["left"] and box["right"] <= box["areaRight"] + 1, box
