#!/usr/bin/env python3
"""Opens a page in headless Chromium, presses its Run button the way a person does (a mouse
click at the button), and watches the page until the button is back to Run with a result
shown. Prints one JSON object: {"snapshots": [{"button", "disabled", "output", "state", "via"}...],
"final": {...}, "console": [...]}.

Usage: press_run.py URL [TIMEOUT_SECONDS]

Talks to Chromium over --remote-debugging-pipe (the DevTools protocol on fds 3 and 4), so
it needs nothing beyond Python's standard library and Debian's `chromium`.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

WATCH = """JSON.stringify((() => {
  const b = document.querySelector('[data-deferred-run]');
  const o = document.getElementById(b.dataset.output);
  return {button: b.textContent, disabled: b.disabled, output: o.textContent, state: o.dataset.state || '', via: o.dataset.via || ''};
})())"""


class DevTools:
    def __init__(self, chromium, profile):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def child_fds():
            # Copy first: a pipe may already sit on fd 3 or 4, where dup2 would do nothing
            # and leave it close-on-exec.
            read_end, write_end = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=child_fds, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(profile, "chromium.log"), "w"))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.next_id = 0
        self.buffer = b""
        self.events = []

    def send(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self.receive()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def receive(self):
        while b"\0" not in self.buffer:
            chunk = os.read(self.from_chrome, 65536)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, session, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        return result.get("result", {}).get("value")

    def close(self):
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    url = sys.argv[1]
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 60
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("press_run: no chromium on PATH; run scripts/setup")
    profile = tempfile.mkdtemp(prefix="deferred-chromium-")
    tools = DevTools(chromium, profile)
    try:
        target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        tools.send("Runtime.enable", session=session)
        tools.send("Page.navigate", {"url": url}, session)
        deadline = time.time() + timeout
        while tools.evaluate(session, "document.readyState") != "complete":
            if time.time() > deadline:
                sys.exit("press_run: the page did not load")
            time.sleep(0.05)
        box = json.loads(tools.evaluate(session,
            "JSON.stringify(document.querySelector('[data-deferred-run]').getBoundingClientRect())"))
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        for kind in ("mousePressed", "mouseReleased"):
            tools.send("Input.dispatchMouseEvent",
                       {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}, session)
        snapshots = []
        while time.time() < deadline:
            snapshot = json.loads(tools.evaluate(session, WATCH))
            if not snapshots or snapshot != snapshots[-1]:
                snapshots.append(snapshot)
            if snapshot["button"] == "Run" and not snapshot["disabled"] and len(snapshots) > 1:
                break
            time.sleep(0.05)
        console = [e["params"] for e in tools.events
                   if e.get("method") in ("Runtime.exceptionThrown", "Runtime.consoleAPICalled")]
        print(json.dumps({"snapshots": snapshots, "final": snapshots[-1] if snapshots else None,
                          "console": console}, default=str))
    finally:
        tools.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
