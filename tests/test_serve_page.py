"""The web page in headless Chromium (Debian's ``chromium``), against a real server on 127.0.0.1.

A person's path: open the page, type a sequence, click Describe, read the answer; type a
description, click Design, read the sequences and the checks table; type a bad sequence and
read the error. Chromium is driven through the DevTools protocol over a pipe
(``--remote-debugging-pipe``: NUL-separated JSON on file descriptors 3 and 4), so nothing
beyond the browser itself is needed: no webdriver, no websocket library, no downloaded browser.

Screenshots go to the test's tmp folder (and to ``$IP_SCREENSHOT_DIR`` when set) for a look.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the server needs fastapi (a project dependency)")
pytest.importorskip("uvicorn", reason="the server needs uvicorn (a project dependency)")

import helpers_model as h  # noqa: E402
from instructprotein.infer.model import Model  # noqa: E402
from instructprotein.serve import create_app, running_server  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (`make test-deps` installs it)"),
]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-default-browser-check",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--hide-scrollbars",
    "--disable-extensions",
    "--remote-debugging-pipe",
]
AMINO = set("ACDEFGHIKLMNPQRSTVWY")
# put the pipe ends given as argv[1], argv[2] on fds 3 and 4, then become argv[3:] (sh's `3<&10` needs bash)
_ON_FDS_3_AND_4 = (
    "import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4);"
    " os.close(r); os.close(w); os.execvp(sys.argv[3], sys.argv[3:])"
)


class Browser:
    """A headless Chromium and one page in it, over the DevTools protocol on a pipe."""

    def __init__(self, exe: str, profile: Path, timeout: float = 30.0):
        self.timeout = timeout
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4: move our ends there in the child
        r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ON_FDS_3_AND_4, str(r), str(w), *cmd],
            pass_fds=(r, w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(r)
        os.close(w)
        self._buf = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None
        target = self.send("Target.createTarget", {"url": "about:blank"}, browser=True)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, browser=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Network"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1100, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )

    # -- the protocol ---------------------------------------------------------------------------------
    def send(self, method: str, params: dict[str, Any] | None = None, *, browser: bool = False) -> dict[str, Any]:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if self.session and not browser:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    # -- what a person does ---------------------------------------------------------------------------
    def js(self, expression: str) -> Any:
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expression: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression}")
            time.sleep(0.05)

    def open(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        self.wait("document.readyState === 'complete' && !!document.getElementById('describe-form')")

    def type_into(self, element_id: str, text: str) -> None:
        """Focus the field, clear it, and type as a keyboard would (input events fire)."""
        self.js(f"(() => {{ const e = document.getElementById({element_id!r}); e.focus(); e.select(); }})()")
        self.send(
            "Input.dispatchKeyEvent",
            {"type": "keyDown", "key": "Delete", "code": "Delete", "windowsVirtualKeyCode": 46},
        )
        self.send(
            "Input.dispatchKeyEvent", {"type": "keyUp", "key": "Delete", "code": "Delete", "windowsVirtualKeyCode": 46}
        )
        self.send("Input.insertText", {"text": text})

    def click(self, element_id: str) -> None:
        """A mouse click in the middle of the element, scrolled into view."""
        x, y = self.js(
            f"(() => {{ const e = document.getElementById({element_id!r}); e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def problems(self) -> list[str]:
        """Uncaught exceptions and console errors seen so far (a CSP violation is one)."""
        out = []
        for e in self.events:
            if e["method"] == "Runtime.exceptionThrown":
                out.append(json.dumps(e["params"]["exceptionDetails"])[:500])
            elif e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"):
                out.append(json.dumps(e["params"]["args"])[:500])
        return out

    def requested_urls(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def close(self) -> None:
        try:
            self.send("Browser.close", browser=True)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from h.one_thread()


@pytest.fixture(scope="module")
def base():
    with running_server(create_app(Model.load(h.model_path(), device="cpu"))) as url:
        yield url


@pytest.fixture()
def browser(tmp_path):
    b = Browser(CHROMIUM, tmp_path / "profile")
    yield b
    b.close()


def _keep(path: Path) -> None:
    folder = os.environ.get("IP_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


def test_describe_design_and_an_error_in_the_page(base, browser, tmp_path):
    b = browser
    b.open(base + "/")
    status = b.wait(
        "(() => { const t = document.getElementById('status').textContent; return t.startsWith('Model') && t; })()"
    )
    # the page names the model folder, never its absolute path (no paths in unauthenticated answers)
    assert f"Model {h.model_path().name}" in status and str(h.model_path()) not in status
    assert "knowledge graph: none" in status

    # describe: paste a sequence, click, read the answer
    seq = h.SEQUENCES["P20002"][:90]
    b.type_into("describe-input", seq)
    assert b.js("document.getElementById('describe-count').textContent") == "90 residues"
    b.click("describe-button")
    assert b.wait("document.getElementById('describe-output').dataset.state === 'done'")
    card = b.js(
        "(() => { const c = document.querySelector('#describe-output article.result');"
        " return {id: c.dataset.id, title: c.querySelector('h3').textContent,"
        " fn: c.querySelector('dd.function').textContent, loc: c.querySelector('dd.location').textContent,"
        " text: c.textContent}; })()"
    )
    assert card["id"] == "query" and card["title"] == "query (90 residues)"
    assert card["fn"] and card["loc"]
    assert "Location by likelihood" in card["text"] and "no knowledge graph" in card["text"]
    assert b.js("document.getElementById('describe-error').hidden") is True
    _keep(b.screenshot(tmp_path / "page-describe.png"))

    # a bad sequence: the API's message, readable, and no answer
    b.type_into("describe-input", "MKT1AYIAK")
    b.click("describe-button")
    assert b.wait("document.getElementById('describe-output').dataset.state === 'error'")
    error = b.js("document.getElementById('describe-error').textContent")
    assert b.js("document.getElementById('describe-error').hidden") is False
    assert error.startswith("The input was refused:") and "position 4 is a digit" in error
    _keep(b.screenshot(tmp_path / "page-error.png"))

    # design: a description, two sequences and their checks table
    b.click("tab-design")
    assert b.js("document.getElementById('panel-design').hidden") is False
    b.type_into("design-input", "binds zinc ion and is located in nucleus")
    b.type_into("design-max-len", "60")
    b.click("design-button")
    assert b.wait("document.getElementById('design-output').dataset.state === 'done'")
    tables = "[...document.querySelectorAll('#design-output table')]"
    verdicts = b.js(f"{tables}[0].querySelectorAll('tbody tr').length")
    vheads = b.js(f"[...{tables}[0].querySelectorAll('th')].map(c => c.textContent)")
    assert verdicts == 2 and vheads[:2] == ["design", "closest training protein (identity)"]
    rows = b.js(f"[...{tables}[1].querySelectorAll('tbody tr')].map(r => [...r.cells].map(c => c.textContent))")
    headers = b.js(f"[...{tables}[1].querySelectorAll('th')].map(c => c.textContent)")
    assert len(rows) == 2 and headers[:4] == ["design", "length", "ended by", "alphabet ok"]
    assert [r[0] for r in rows] == ["design1", "design2"] and all(r[3] == "yes" for r in rows)
    fasta = b.js("document.getElementById('design-fasta').textContent").split("\n")
    seqs = [line for line in fasta if line and not line.startswith(">")]
    assert len(seqs) == 2 and all(set(s) <= AMINO and 30 <= len(s) <= 60 for s in seqs)
    _keep(b.screenshot(tmp_path / "page-design.png"))

    # nothing broke in the page, and nothing was fetched from anywhere but this server
    assert b.problems() == []
    urls = b.requested_urls()
    assert urls and all(u.startswith(base) for u in urls), urls
    assert {
        base + "/static/app.js",
        base + "/static/style.css",
        base + "/health",
        base + "/describe",
        base + "/design",
    } <= set(urls)


def test_api_docs_render_offline(base, browser, tmp_path):
    pytest.importorskip("swagger_ui_bundle", reason="without swagger-ui-bundle-v2, /docs loads Swagger UI from a CDN")
    b = browser
    b.send("Page.navigate", {"url": base + "/docs"})
    paths = b.wait(
        "(() => { const p = [...document.querySelectorAll('.opblock-summary-path')].map(e => e.textContent);"
        " return p.length >= 4 && p; })()"
    )
    assert {"/health", "/describe", "/design", "/classify"} <= set(paths)
    _keep(b.screenshot(tmp_path / "page-docs.png"))
    urls = b.requested_urls()
    assert all(u.startswith(base) or u.startswith("data:") for u in urls), urls
