#!/usr/bin/python3
"""The browser's side of tests/integration/console.sh: one headless Debian Chromium, driven by
chromedriver, against the otad and fleet the script started. Signs in as an admin with a token,
creates a rollout through the form, reads its plan, starts it, watches stage 1 advance while
the devices report, approves stage 2; sees a rollout page follow changes made through the API
from the live event stream (and otad log that stream), then, with the streams full, from the
3 s poll it falls back to; finds a halted rollout's reason; signs in as an auditor
and finds no action, and the API refusing one forced from the page; checks markup in a rollout
name and in a device's failure reason is shown as text; counts Content-Security-Policy
violations in the browser's console log (zero, and one for a planted inline script, which shows
the count is real). Screenshots of the overview, a rollout and the plan go to $SHOTS."""
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

MPORT, DPORT, PKI = int(os.environ["MPORT"]), int(os.environ["DPORT"]), os.environ["PKI"]
ADMIN, AUDITOR = os.environ["ADMIN_TOKEN"], os.environ["AUDITOR_TOKEN"]
REL2, REL3 = os.environ["REL2"], os.environ["REL3"]
DEVICES = os.environ["DEVICES"].split()
SHOTS = os.environ["SHOTS"]
OTAD_LOG = os.environ["OTAD_LOG"]
BASE = f"https://127.0.0.1:{MPORT}/console/"
NAME = "<img src=x onerror=window.x=1><script>window.x=2</script>"
FAILURE = "<b>bold</b><script>window.y=1</script><img src=x onerror=window.y=2>"

failures = []
checks = 0


def check(what, cond, got=None):
    global checks
    checks += 1
    if not cond:
        failures.append(f"{what}" + (f": got {got!r}" if got is not None else ""))
        print(f"FAIL: {what}" + (f": got {got!r}" if got is not None else ""), flush=True)


# ---- the devices and the API, outside the browser ----

def https(port, method, path, body=None, cert=None, token=None):
    ctx = ssl.create_default_context(cafile=f"{PKI}/device-ca.pem")
    if cert:
        ctx.load_cert_chain(f"{PKI}/{cert}.pem", f"{PKI}/{cert}.key")
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=20)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    c.request(method, path, json.dumps(body) if body is not None else None, headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else {}


def api(method, path, body=None, token=ADMIN):
    return https(MPORT, method, path, body, token=token)


version = {d: "1.0.0" for d in DEVICES}


def fleet_round(outcome, reason=None):
    """Every device checks in; those offered an update report each step and end confirmed
    (outcome "good") or failed with reason. Returns the devices offered."""
    offered, answers = [], {}
    for d in DEVICES:
        st, a = https(DPORT, "POST", "/device/v1/checkin", {
            "hw_variant": "pico2w", "version": version[d], "security_floor": 1,
            "root_version": 1, "active_slot": "A", "boot_state": "normal"}, cert=d)
        check(f"{d} checks in", st == 200, st)
        if a.get("action") == "update":
            offered.append(d)
            answers[d] = a
    # Every member joined before any finishes, as in a fleet polling together.
    for d in offered:
        a = answers[d]
        dep = a["update"]["deployment_id"]
        target = json.loads(__import__("base64").b64decode(a["update"]["manifest"]["payload"]))["version"]
        steps = ["downloading", "downloaded", "installing", "rebooting", "trial"]
        for seq, s in enumerate(steps, 1):
            https(DPORT, "POST", f"/device/v1/deployments/{dep}/events", {"seq": seq, "status": s}, cert=d)
        if outcome == "good":
            st, _ = https(DPORT, "POST", f"/device/v1/deployments/{dep}/events",
                          {"seq": 6, "status": "confirmed", "version": target}, cert=d)
            version[d] = target
        else:
            st, _ = https(DPORT, "POST", f"/device/v1/deployments/{dep}/events",
                          {"seq": 6, "status": "failed", "reason": reason}, cert=d)
        check(f"{d} reports its outcome", st in (200, 201), st)
    return offered


# ---- the browser ----

def spki_pin():
    pem = subprocess.run(["openssl", "x509", "-in", f"{PKI}/server.pem", "-pubkey", "-noout"],
                         check=True, capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pem,
                         check=True, capture_output=True).stdout
    import base64
    import hashlib
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


profile = tempfile.mkdtemp(prefix="console-chromium-")
opts = webdriver.ChromeOptions()
opts.binary_location = "/usr/bin/chromium"
for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,900",
          # trust otad's test certificate by its key only, nothing else
          f"--ignore-certificate-errors-spki-list={spki_pin()}"]:
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
logs = []


def collect():
    logs.extend(drv.get_log("browser"))


def csp_violations():
    collect()
    return [l["message"] for l in logs if "Content Security Policy" in l["message"]]


def wait(cond, what, timeout=30):
    try:
        return WebDriverWait(drv, timeout, poll_frequency=0.25,
                             ignored_exceptions=(StaleElementReferenceException,)).until(cond)
    except Exception:
        check(what, False, drv.execute_script("return location.hash + ' | ' + "
                                              "document.querySelector('main').innerText.slice(0, 300)"))
        return None


def css(sel):
    return drv.find_elements(By.CSS_SELECTOR, sel)


def text_of(sel):
    # Read in one script call: the live refresh may replace the element between two calls.
    return drv.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", sel)


def go(hash_):
    drv.execute_script("location.hash = arguments[0]", hash_)


def sign_in(token, name):
    drv.get(BASE)
    wait(lambda d: css("#token") and css("#token")[0].is_displayed(), "sign-in form shown")
    css("#token")[0].send_keys(token)
    css("#token-form button")[0].click()
    wait(lambda d: name in text_of("#who"), f"signed in as {name}")


def badge():
    return text_of("h1 .badge")


def shot(name):
    drv.save_screenshot(os.path.join(SHOTS, name))


try:
    # --- admin: sign in, overview ---
    sign_in(ADMIN, "alice")
    check("the token is in no storage", drv.execute_script(
        "return document.cookie === '' && localStorage.length === 0 && sessionStorage.length === 0"))
    wait(lambda d: "Devices by version" in text_of("main"), "overview charts")
    check("overview counts the fleet", f"{len(DEVICES) + 3} devices" in text_of("main"), text_of("main")[:80])

    # --- create through the form, see the plan ---
    go("#/rollouts")
    wait(lambda d: css("#new-rollout"), "admin sees New rollout")
    css("#new-rollout")[0].click()
    wait(lambda d: css("#rollout-form"), "rollout form")
    css("#f-name")[0].send_keys(NAME)
    Select(css("#f-release")[0]).select_by_value(REL2)
    rows = css(".stage-row")
    p = rows[0].find_element(By.NAME, "percent")
    p.clear()
    p.send_keys("50")
    p = rows[1].find_element(By.NAME, "percent")
    p.clear()
    p.send_keys("100")
    rows[2].find_element(By.TAG_NAME, "button").click()
    css("#plan-button")[0].click()
    wait(lambda d: css("#plan"), "the plan is shown")
    summary = text_of(".plan-summary")
    check("plan covers the fleet", f"{len(DEVICES) + 3} devices considered: {len(DEVICES)} would be updated, 3 skipped" in summary, summary)
    skipped = text_of("#plan")
    check("plan names the skip reasons", all(w in skipped for w in ["below floor", "decommissioned", "pending admission"]), skipped)
    check("plan is an estimate before create", "estimate" in text_of("#plan h2"))
    drv.execute_script("document.getElementById('plan').scrollIntoView()")
    shot("plan.png")
    css("#create-button")[0].click()
    wait(lambda d: css("[data-action=start]") and css("#plan"), "draft with its exact plan and Start")
    rid = drv.execute_script("return decodeURIComponent(location.hash.split('/')[2])")
    check("draft plan is exact", "exact" in text_of("#plan h2"), text_of("#plan h2"))
    # A keyed hash may put all 12 devices in stage 1, or none (1 chance in 2,048): then this
    # draft cannot show a stage advancing, and the same definition is created again.
    for _ in range(5):
        st, pl = api("GET", f"/api/v1/rollouts/{rid}/plan")
        if 0 < pl["stages"][0]["devices"] < len(DEVICES):
            break
        st, r = api("GET", f"/api/v1/rollouts/{rid}")
        api("POST", f"/api/v1/rollouts/{rid}/abort", {"reason": "degenerate canary"})
        st, r = api("POST", "/api/v1/rollouts", r["definition"])
        rid = r["id"]
        go(f"#/rollouts/{rid}")
        wait(lambda d: css("[data-action=start]") and css("#plan"), "the draft again")
    check("markup in a rollout name is text", text_of("#rollout-name") == NAME, text_of("#rollout-name"))
    check("no element made from the name", not css("#rollout-name *") and not css("main img"))
    check("no script from the name ran", drv.execute_script("return window.x === undefined"))

    # --- start, watch stage 1 advance while devices report, approve ---
    css("[data-action=start]")[0].click()
    wait(lambda d: badge() == "running", "started")
    offered = fleet_round("good")
    check("stage 1 offered devices", 0 < len(offered) < len(DEVICES), len(offered))
    wait(lambda d: css("[data-action=approve]"), "stage 1 done: Approve shown by the live refresh")
    check("waiting for approval", badge() == "waiting approval", badge())
    cells = drv.execute_script(
        "return [...document.querySelectorAll('#live tbody tr:first-child td')].map((c) => c.innerText)")
    check("stage 1 progress: joined and succeeded", cells[2:4] == [str(len(offered))] * 2, cells)
    shot("rollout.png")
    css("[data-action=approve]")[0].click()
    wait(lambda d: badge() == "running" and "Stage 2 of 2" in text_of("main"), "approved: stage 2 runs")
    rest = fleet_round("good")
    check("stage 2 took the rest", len(rest) + len(offered) == len(DEVICES), len(rest))
    wait(lambda d: badge() == "completed", "completed, seen by the live refresh")

    # --- the event stream refreshes the page: a change made through the API shows long before
    # the slow poll that runs beside the stream (30 s), and otad logged the stream ---
    st, r = api("POST", "/api/v1/rollouts", {"name": "stream probe", "release_id": REL3, "stages": [
        {"percent": 100, "min_finished": 1}]})
    check("probe draft", st == 201, st)
    pid = r["id"]
    go(f"#/rollouts/{pid}")
    wait(lambda d: badge() == "draft", "the probe's page")
    wait(lambda d: drv.execute_script("return document.body.dataset.live") == "stream",
         "the rollout page reads the event stream")
    with open(OTAD_LOG, encoding="utf-8", errors="replace") as f:
        check("otad logged the console's stream", "event stream opened by alice" in f.read())
    time.sleep(1)
    for action, state in [("start", "running"), ("abort", "aborted")]:
        t0 = time.monotonic()
        st, _ = api("POST", f"/api/v1/rollouts/{pid}/{action}", {"reason": "stream probe"} if action == "abort" else {})
        check(f"probe {action}", st == 200, st)
        wait(lambda d: badge() == state, f"the probe {state}, seen from the stream", timeout=10)
        took = time.monotonic() - t0
        check(f"{state} shown from the stream, not the 30 s poll", took < 10, took)
        check("still on the stream", drv.execute_script("return document.body.dataset.live") == "stream")
        print(f"console_browser: {action} through the API shown in the page after {took:.2f} s", flush=True)

    # --- the stream refused (503 too-many-streams: max_streams = 3, two held here, one the
    # page left still counted until its next heartbeat): the page polls every 3 s instead ---
    time.sleep(6)  # the streams the browser left are freed at their next heartbeat (5 s here)
    held = []
    for _ in range(2):
        ctx = ssl.create_default_context(cafile=f"{PKI}/device-ca.pem")
        c = http.client.HTTPSConnection("127.0.0.1", MPORT, context=ctx, timeout=20)
        c.request("GET", "/api/v1/events", headers={"Authorization": f"Bearer {ADMIN}"})
        held.append((c, c.getresponse()))
    check("two streams held", all(r.status == 200 for _, r in held), [r.status for _, r in held])
    st, r = api("POST", "/api/v1/rollouts", {"name": "poll probe", "release_id": REL3, "stages": [
        {"percent": 100, "min_finished": 1}]})
    qid = r["id"]
    go(f"#/rollouts/{qid}")
    wait(lambda d: badge() == "draft", "the poll probe's page")
    wait(lambda d: drv.execute_script("return document.body.dataset.live") == "poll",
         "a refused stream: the page falls back to polling")
    st, _ = api("POST", f"/api/v1/rollouts/{qid}/start", {})
    check("poll probe start", st == 200, st)
    wait(lambda d: badge() == "running", "the poll probe running, seen by polling", timeout=10)
    st, _ = api("POST", f"/api/v1/rollouts/{qid}/abort", {"reason": "poll probe"})
    check("poll probe abort", st == 200, st)
    wait(lambda d: badge() == "aborted", "the poll probe aborted, seen by polling", timeout=10)
    for c, _ in held:
        c.close()
    with open(OTAD_LOG, encoding="utf-8", errors="replace") as f:
        check("otad refused the third stream", "event streams are open already" in f.read())

    # --- a halted rollout and its reason; a device's markup reason as text ---
    st, r = api("POST", "/api/v1/rollouts", {"name": "3.0.0 canary", "release_id": REL3, "stages": [
        {"percent": 100, "failure_threshold": 0, "min_finished": 1}]})
    check("second rollout", st == 201, st)
    hid = r["id"]
    api("POST", f"/api/v1/rollouts/{hid}/start", {})
    fleet_round("bad", FAILURE)
    st, r = api("GET", f"/api/v1/rollouts/{hid}")
    check("halted", r.get("state") == "paused", r.get("state"))
    go(f"#/rollouts/{hid}")
    wait(lambda d: text_of("#halt-reason").startswith("Halted:"), "halt reason shown")
    check("the engine's reason", r.get("reason", "") in text_of("#halt-reason"), text_of("#halt-reason"))
    wait(lambda d: FAILURE in text_of("#live"), "a device's failure reason shown as text")
    check("no element made from the reason", not css("main b") and not css("main img") and not css("main script"))
    check("no script from the reason ran", drv.execute_script("return window.y === undefined"))
    check("admin may resume", bool(css("[data-action=resume]")))
    go("#/overview")
    wait(lambda d: css(".rollout-card"), "overview shows the rollout in progress")
    drv.execute_script("window.scrollTo(0, 0)")
    shot("overview.png")

    # --- auditor: nothing to click, and the API refuses a forced action ---
    css("#signout")[0].click()
    sign_in(AUDITOR, "audrey")
    go(f"#/rollouts/{hid}")
    wait(lambda d: "Halted:" in text_of("#halt-reason") and css("#live table"), "auditor reads the rollout")
    check("auditor sees no action", not css("[data-action]") and not css("#action-reason"))
    go("#/rollouts")
    wait(lambda d: css("main table"), "auditor reads the list")
    check("auditor sees no New rollout", not css("#new-rollout"))
    status = drv.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(`/api/v1/rollouts/${arguments[0]}/resume`, {method: 'POST', headers: {"
        "'Authorization': `Bearer ${arguments[1]}`, 'Content-Type': 'application/json'}, body: '{}'})"
        ".then((r) => done(r.status), (e) => done(String(e)));", hid, AUDITOR)
    check("the API refuses a forced resume", status == 403, status)
    st, r = api("GET", f"/api/v1/rollouts/{hid}")
    check("still paused", r.get("state") == "paused", r.get("state"))
    go("#/audit")
    wait(lambda d: css("#audit-verify"), "audit page")
    css("#audit-verify")[0].click()
    wait(lambda d: text_of("#verify-result").startswith("Chain verified"), "chain verified")
    check("audit lists the forced attempt", "access.denied" in text_of("main"))

    # --- CSP: none so far; a planted inline script is refused and counted ---
    v = csp_violations()
    check("zero CSP violations", len(v) == 0, v)
    drv.execute_script("const s = document.createElement('script'); s.textContent = 'window.z = 1';"
                       "document.head.append(s);")
    time.sleep(0.5)
    check("the planted inline script did not run", drv.execute_script("return window.z === undefined"))
    v = csp_violations()
    check("and its violation is counted", len(v) == 1, v)
    print(f"console_browser: CSP violations from the console: 0; screenshots in {SHOTS}")
except Exception as e:  # an unexpected page state: report it as a failure with the page
    check(f"browser run: {e!r}", False)
finally:
    try:
        collect()
        drv.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)

print(f"console_browser: {checks} checks, {len(failures)} failed")
sys.exit(1 if failures else 0)
