"""A tiny Chrome DevTools Protocol client over ``--remote-debugging-pipe``
(file descriptors 3 and 4, messages separated by NUL): no websocket library,
no port shared with other processes. Used by the slow HTML report test."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """Headless Chromium driven through the DevTools pipe."""

    def __init__(self, binary: str, width: int = 1400, height: int = 900):
        self._in_r, self._in_w = os.pipe()  # we write, Chromium reads fd 3
        self._out_r, self._out_w = os.pipe()  # Chromium writes fd 4, we read
        self._profile = tempfile.mkdtemp(prefix="ntk-cdp-")
        cmd = [binary, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
               "--no-first-run", "--no-default-browser-check", f"--user-data-dir={self._profile}",
               f"--window-size={width},{height}", "about:blank"]

        in_r, out_w = self._in_r, self._out_w

        def fds():  # our pipe ends as 3 and 4 in the child (via free numbers: they may overlap)
            a, b = os.dup(in_r), os.dup(out_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        # 3 and 4 are kept open in the child whatever they are in this process
        self.proc = subprocess.Popen(cmd, pass_fds=(3, 4), preexec_fn=fds,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(self._in_r)
        os.close(self._out_w)
        self._buf = b""
        self._id = 0
        self.session: str | None = None

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._in_w, json.dumps(msg).encode() + b"\0")
        return self._id

    def _read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._out_r, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, page: bool = True, timeout: float = 30) -> dict:
        """Send a command (to the page's session unless ``page=False``) and
        return its result; events are skipped."""
        mid = self._send(method, params, self.session if page else None)
        while True:
            msg = self._read(timeout)
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, page=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 page=False)["sessionId"]
        self.call("Page.enable")
        self.call("Page.navigate", {"url": url})
        for _ in range(100):  # wait for the document to load
            if self.eval("document.readyState") == "complete":
                return
            time.sleep(0.1)
        raise TimeoutError(f"{url} did not load")

    def eval(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def click(self, x: float, y: float) -> None:
        """A real mouse click at page coordinates (press and release)."""
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def screenshot(self) -> bytes:
        import base64

        return base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])

    def close(self) -> None:
        try:
            self._send("Browser.close")
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - the browser is killed below in any case
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self._in_w)
        os.close(self._out_r)
        shutil.rmtree(self._profile, ignore_errors=True)
