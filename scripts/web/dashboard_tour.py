#!/usr/bin/env python3
"""Walks deferred's dashboard in headless Chromium as a person does, saving a screenshot at
each step, and prints one JSON object saying what each page showed.

Usage: dashboard_tour.py BASE_URL ADMIN_TOKEN JOB_ID SCREENSHOT_DIR [--live LINE=FILE]...

1. opens the job's page with no session: it should land on the login form;
2. signs in with a wrong token, then with the right one, typed and clicked;
3. on the job's page, for each --live LINE=FILE in turn: waits until LINE shows in the log
   without the page reloading (the live log), then creates FILE (a job can wait on it);
4. waits until the job has ended and the page shows results.json;
5. opens the overview and the job's project, then signs out and checks the door is shut.

The waits are bounds against hanging (90 s each), not speed checks.
"""
import json
import os
import sys

from devtools import DevTools

TIMEOUT = 90


def arrived(tools, session, condition):
    """Waits until `condition` holds in a document that is fully loaded: a page whose address
    has changed may still be arriving, and reading it then would see half of it."""
    tools.wait_for(session, f"document.readyState === 'complete' && ({condition})", TIMEOUT)


def text(tools, session, selector):
    return tools.evaluate(session, f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''")


def main():
    args = sys.argv[1:]
    if len(args) < 4:
        sys.exit(__doc__)
    base, token, job, shots = args[:4]
    live = []
    rest = args[4:]
    while rest:
        if rest[0] != "--live" or len(rest) < 2 or "=" not in rest[1]:
            sys.exit(__doc__)
        live.append(rest[1].split("=", 1))
        rest = rest[2:]
    os.makedirs(shots, exist_ok=True)
    report = {"screenshots": []}
    tools = DevTools()

    def shot(session, name):
        path = os.path.join(shots, name)
        tools.screenshot(session, path)
        report["screenshots"].append(path)

    try:
        page = tools.open_page()
        # 1. No session: the job's page sends the browser to the login form.
        tools.navigate(page, f"{base}/jobs/{job}")
        arrived(tools, page, "location.pathname === '/login' && !!document.querySelector('input[name=token]')")
        report["refused_to"] = tools.evaluate(page, "location.pathname + location.search")
        report["refused_shows"] = text(tools, page, "main")
        shot(page, "01-login.png")

        # 2. A wrong token, then the right one.
        tools.type(page, "input[name=token]", "not-the-token")
        tools.click(page, "form.login button")
        arrived(tools, page, "!!document.getElementById('problem')")
        report["wrong_token"] = text(tools, page, "#problem")
        shot(page, "02-wrong-token.png")
        tools.type(page, "input[name=token]", token)
        tools.click(page, "form.login button")
        arrived(tools, page, f"location.pathname === '/jobs/{job}' && !!document.getElementById('log')")
        report["signed_in_at"] = tools.evaluate(page, "location.pathname")

        # 3. The live log: each line shows up in this same document (no reload in between).
        tools.evaluate(page, "window.deferredTour = 'same document'")
        report["live"] = []
        for line, release in live:
            arrived(tools, page, f"document.getElementById('log').textContent.includes({json.dumps(line)})")
            report["live"].append({
                "line": line,
                "same_document": tools.evaluate(page, "window.deferredTour === 'same document'"),
                "status": text(tools, page, "#status"),
                "log": text(tools, page, "#log"),
                "states": text(tools, page, "#events tbody"),
            })
            shot(page, f"03-live-{len(report['live'])}.png")
            open(release, "w").close()

        # 4. The end: the page reloads itself and shows results.json and the artifacts.
        arrived(tools, page, "!!document.getElementById('results')")
        report["ended"] = {
            "status": text(tools, page, "#status"),
            "reloaded": tools.evaluate(page, "window.deferredTour === undefined"),
            "log": text(tools, page, "#log"),
            "results": text(tools, page, "#results"),
            "artifacts": tools.evaluate(page, "[...document.querySelectorAll('#artifacts a')].map(a => a.textContent)"),
            "payload": text(tools, page, "#payload"),
        }
        shot(page, "04-job-ended.png")

        # 5. The overview and the project; then signing out shuts the door again.
        tools.navigate(page, f"{base}/")
        arrived(tools, page, "!!document.getElementById('hosts')")
        report["overview"] = {section: text(tools, page, f"#{section}") for section in ("hosts", "projects", "jobs")}
        shot(page, "05-overview.png")
        tools.click(page, "#projects a[href^='/projects/']")
        arrived(tools, page, "location.pathname.startsWith('/projects/')")
        report["project"] = text(tools, page, "main")
        shot(page, "06-project.png")
        tools.click(page, "form.signout button")
        arrived(tools, page, "location.pathname === '/login'")
        tools.navigate(page, f"{base}/")
        arrived(tools, page, "location.pathname === '/login'")
        report["after_sign_out"] = tools.evaluate(page, "location.pathname + location.search")
        # The wrong token's 401 was asked for; anything else the browser complained of counts.
        report["problems"] = [p for p in tools.problems() if not (
            p.get("source") == "network" and p.get("url", "").endswith("/login") and "401" in p.get("text", ""))]
    except Exception as error:  # say what was on the page when it went wrong
        report["failure"] = f"{type(error).__name__}: {error}"
        try:
            report["failure_page"] = tools.evaluate(page, "location.href + '\\n' + document.body.innerText")
            shot(page, "99-failure.png")
        except Exception:
            pass
    finally:
        tools.close()
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()
