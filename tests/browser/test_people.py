"""Signing in as a person in a real headless Chromium, through dashboards/static/session.js.

No page mounts session.js yet (the map's app.js has its own token field; the lead wires it), so the
test loads the site page and adds lang.js and session.js with a mount point, as a page would.
Checks: a wrong password is said in the form; 鲁西集团's operator signs in with name and password,
sees their name, role and plant in words (中文 and EN), holds an HttpOnly cookie no script can read,
and the page's EventSource — which cannot send headers — carries LC-LUXI's events only; they change
their own password from the widget; sign-out
ends the session on the server; a session ended elsewhere (the admin disables the user) signs the
page out visibly; a service token still signs in. Screenshots at the three viewports.
"""

from __future__ import annotations

import httpx
import orjson

from tests.browser.conftest import ARTIFACTS, VIEWPORTS
from tests.conftest import publisher, wait_until


def open_with_session(browser, base: str):
    """鲁西集团's site view, which mounts the sign-in (session.js) in its header."""
    page = browser.new_page()
    page.goto(base + "/sites/LC-LUXI")
    page.wait_for_function("window.liaowangReady === true", timeout=15_000)
    page.wait_for_selector("#signin-name, #signin[data-signed-in=true]", timeout=10_000)
    return page


def sign_in(page, name: str, password: str) -> None:
    page.fill("#signin-name", name)
    page.fill("#signin-password", password)
    page.click("#signin-btn")


def leak(client, site: str, a: str, b: str) -> None:
    """Two neighbouring detectors at their second level: a confirmed leak."""
    import time

    body = {"site_id": site, "readings": [{"sensor_id": a, "ts": time.time(), "value": 45.0, "unit": "%LEL"},
                                          {"sensor_id": b, "ts": time.time(), "value": 44.0, "unit": "%LEL"}]}
    client.publish(f"liaowang/v1/readings/{site}", orjson.dumps(body), qos=1).wait_for_publish(5)


def test_a_plant_operator_signs_in_sees_only_their_plant_and_signs_out(server, browser):
    base, (host, port), pipeline = server
    ARTIFACTS.mkdir(exist_ok=True)
    page = open_with_session(browser, base)
    assert page.locator("#signin-name").is_visible() and page.locator("#signin-password").is_visible()

    sign_in(page, "luxi-operator", "not-the-password")
    page.wait_for_function("() => document.getElementById('signin-error').textContent.includes('登录失败')")
    assert page.evaluate("() => LW.session.user()") is None

    sign_in(page, "luxi-operator", "demo-luxi-pass")
    page.wait_for_selector("#whoami")
    who = page.locator("#whoami").inner_text()
    assert "鲁西集团 操作员" in who and "操作员" in who and "鲁西集团" in who, who
    user = page.evaluate("() => LW.session.user()")
    assert user["sites"] == ["LC-LUXI"] and user["kind"] == "user"
    assert page.evaluate("() => [LW.session.covers('LC-LUXI'), LW.session.covers('LC-XFHG'), LW.session.may('operator'),"
                         " LW.session.may('duty_officer')]") == [True, False, True, False]
    assert "liaowang_session" not in page.evaluate("() => document.cookie")  # HttpOnly: no script reads the secret
    for name, size in VIEWPORTS.items():
        page.set_viewport_size({"width": size[0], "height": size[1]})
        box = page.locator("#signin").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= size[0] + 1, (name, box)  # the widget fits the width
        page.screenshot(path=str(ARTIFACTS / f"people-signed-in-{name}.png"))
    page.set_viewport_size({"width": 1920, "height": 1080})

    # the page's own EventSource (no headers possible) is signed by the cookie and carries LC-LUXI's events only
    page.evaluate("""() => {
        window.received = [];
        window.testStream = new EventSource("/api/v1/events");
        testStream.addEventListener("hello", () => { window.streamOpen = true; });
        for (const kind of ["alert", "site"]) {
            testStream.addEventListener(kind, e => window.received.push([kind, JSON.parse(e.data).site_id]));
        }
    }""")
    page.wait_for_function("() => window.streamOpen === true", timeout=10_000)
    client = publisher(host, port)
    leak(client, "LC-XFHG", "LC-XFHG-GD-01", "LC-XFHG-GD-02")
    wait_until(lambda: any(a.site_id == "LC-XFHG" for a in pipeline.alerts.open_alerts()), timeout=10)
    leak(client, "LC-LUXI", "LC-LUXI-GD-01", "LC-LUXI-GD-02")
    page.wait_for_function("() => window.received.some(([k, s]) => k === 'site' && s === 'LC-LUXI')", timeout=10_000)
    assert {site for _, site in page.evaluate("() => window.received")} == {"LC-LUXI"}
    alerts = page.evaluate("() => LW.session.fetch('/api/v1/alerts')")
    assert alerts and {a["site_id"] for a in alerts} == {"LC-LUXI"}
    page.evaluate("() => window.testStream.close()")
    client.disconnect()

    # English: the role in words and the button follow the language switch
    page.evaluate("() => LW.lang.set('en')")
    assert "Operator" in page.locator("#whoami").inner_text()
    assert page.locator("#signout-btn").inner_text() == "Sign out"
    page.screenshot(path=str(ARTIFACTS / "people-signed-in-en.png"))
    page.evaluate("() => LW.lang.set('zh')")

    # one's own password, from the widget: a mismatch is said, then the change is confirmed
    page.click("#password-btn")
    page.fill("#pw-current", "demo-luxi-pass")
    page.fill("#pw-new", "luxi-new-password")
    page.fill("#pw-again", "luxi-new-passwrod")
    page.click("#pw-save")
    assert "不同" in page.locator("#pw-msg").inner_text()
    page.fill("#pw-again", "luxi-new-password")
    page.click("#pw-save")
    page.wait_for_function("() => (document.getElementById('pw-msg') || {}).textContent === '密码已修改(其他设备上的登录已退出)'")
    assert ("luxi-operator", "password_changed") in [(r["actor"], r["action"]) for r in pipeline.audit.records()]

    # sign-out ends the session on the server: the form is back and the cookie is good for nothing
    page.click("#signout-btn")
    page.wait_for_selector("#signin-name")
    assert page.evaluate("() => fetch('/api/v1/session').then(r => r.status)") == 401
    assert ("luxi-operator", "sign_out") in [(r["actor"], r["action"]) for r in pipeline.audit.records()]
    page.screenshot(path=str(ARTIFACTS / "people-sign-in-form-1920x1080.png"))
    sign_in(page, "luxi-operator", "luxi-new-password")  # the new password is the one that works
    page.wait_for_selector("#whoami")


def test_a_session_ended_elsewhere_signs_the_page_out_visibly_and_a_token_still_works(server, browser):
    base, _, pipeline = server
    page = open_with_session(browser, base)
    sign_in(page, "duty", "demo-duty-pass")
    page.wait_for_selector("#whoami")
    assert "市局值班员" in page.locator("#whoami").inner_text()

    with httpx.Client(base_url=base, headers={"Authorization": "Bearer demo-admin"}, timeout=10) as admin:
        assert admin.patch("/api/v1/users/duty", json={"disabled": True}).status_code == 200
    page.evaluate("() => LW.session.check()")  # what the page does every minute
    page.wait_for_selector("#signin-name")
    assert "登录已失效" in page.locator("#signin-error").inner_text()
    assert page.evaluate("() => LW.session.user()") is None
    page.screenshot(path=str(ARTIFACTS / "people-session-ended.png"))

    page.click("#signin-token-toggle")
    page.fill("#token", "demo-viewer")
    page.click("#signin-btn")
    page.wait_for_selector("#whoami")
    assert "demo-viewer" in page.locator("#whoami").inner_text()
    assert page.evaluate("() => LW.session.user().kind") == "token"
