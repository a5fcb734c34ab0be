#!/usr/bin/env python3
"""Opens a page in headless Chromium, presses its Run button the way a person does (a mouse
click at the button), and watches the page until the button is back to Run with a result
shown. Prints one JSON object: {"snapshots": [{"button", "disabled", "output", "state", "via"}...],
"final": {...}, "console": [...]}.

Usage: press_run.py URL [TIMEOUT_SECONDS]

Talks to Chromium over --remote-debugging-pipe (the DevTools protocol on fds 3 and 4), so
it needs nothing beyond Python's standard library and Debian's `chromium` (see devtools.py).
"""
import json
import sys
import time

from devtools import DevTools

WATCH = """JSON.stringify((() => {
  const b = document.querySelector('[data-deferred-run]');
  const o = document.getElementById(b.dataset.output);
  return {button: b.textContent, disabled: b.disabled, output: o.textContent, state: o.dataset.state || '', via: o.dataset.via || ''};
})())"""


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    url = sys.argv[1]
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 60
    tools = DevTools()
    try:
        session = tools.open_page()
        deadline = time.time() + timeout
        tools.navigate(session, url, timeout)
        tools.click(session, "[data-deferred-run]")
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


if __name__ == "__main__":
    main()
