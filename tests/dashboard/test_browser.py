"""End to end in headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by
Selenium; ``make test`` installs them): an operator logs in, watches a backend turn red when
its upstream stops and green when it returns, without reloading; tests and adds a backend
through the form and sees it healthy with its models, disables and deletes it; sees request
counts rise and the routing decisions listed; and no raw key ever reaches the page or its
websocket. Screenshots go to var/screenshots/."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from openai import OpenAI

from tests.cli_process import GatewayProcess
from tests.dashboard.test_process import PASSWORD, create_superuser
from tests.fakes.server import FakeProvider, openai_models
from tests.server.conftest import ROOT
from tests.traffic.upstream import chat_upstream

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = ROOT / "var" / "screenshots"
RAW_KEY = "sk-alpha-RAWSECRET-77778888"
ADDED_KEY = "sk-beta-RAWSECRET-11112222"
RED = (220, 38, 38)  # STATUSES["unhealthy"] in backends/status.py, #dc2626
GREEN = (22, 163, 74)  # STATUSES["healthy"], #16a34a
DEADLINE = 20  # seconds, for steps the issue sets no bar for; they take a few seconds in practice
RED_WITHIN = 5  # seconds from the upstream stopping: a 1 s probe interval and a 1 s push


def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("ELDRIC_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium and chromium-driver are required (make browser-deps)")
        pytest.skip("chromium or chromium-driver not installed (make browser-deps)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1800"):
        options.add_argument(flag)
    # The websocket's frames, read back from the DevTools log.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_until(driver, predicate, what: str, timeout: float = DEADLINE):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # Every push replaces the table's rows, so an element found a moment ago may be gone by the
    # time it is read: that is "not yet", not a failure.
    ignored = (NoSuchElementException, StaleElementReferenceException, AttributeError)
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=ignored).until(predicate)
    except Exception:
        driver.save_screenshot(str(SCREENSHOTS / "failure.png"))
        raise AssertionError(f"{what} not seen within {timeout}s (screenshot var/screenshots/failure.png)") from None


def backend_cell(driver, name: str):
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f'#eld-backends tr[data-backend="{name}"]')
    return rows[0] if rows else None


def status_colour(driver, name: str) -> tuple[int, int, int] | None:
    """The colour the browser renders the backend's status in, as (r, g, b)."""
    from selenium.webdriver.common.by import By

    row = backend_cell(driver, name)
    if row is None:
        return None
    css = row.find_element(By.CSS_SELECTOR, ".eld-status").value_of_css_property("color")  # "rgba(r, g, b, a)"
    return tuple(int(part) for part in css[css.index("(") + 1 : css.index(")")].split(",")[:3])


def config_row(driver, name: str):
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f'#eld-config-backends tr[data-backend="{name}"]')
    return rows[0] if rows else None


def instance_row(driver, name: str = "default"):
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f'#eld-instances tr[data-instance="{name}"]')
    return rows[0] if rows else None


def model_row(driver, model: str):
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f'#eld-models tr[data-model="{model}"]')
    return rows[0] if rows else None


def press(driver, button) -> None:
    """Click ``button`` where it is now. A pointer click lands on coordinates computed a moment
    earlier, and a push that re-renders a panel above can move the page in between."""
    driver.execute_script("arguments[0].click();", button)


def click_action(driver, backend: str, action: str) -> None:
    from selenium.webdriver.common.by import By

    # The row may be rebuilt between finding and clicking: retried by wait_until.
    def clicked(d) -> bool:
        press(d, config_row(d, backend).find_element(By.CSS_SELECTOR, f'button[data-action="{action}"]'))
        return True

    wait_until(driver, clicked, f"{action} clicked on {backend}")


def add_disable_delete(driver, added: FakeProvider) -> None:
    """Test before saving, add, then disable and delete a backend, all through the page."""
    from selenium.webdriver.common.by import By

    form = driver.find_element(By.ID, "eld-add-form")
    form.find_element(By.NAME, "name").send_keys("beta")
    form.find_element(By.NAME, "url").send_keys(f"{added.url}/v1")
    form.find_element(By.NAME, "api_key").send_keys(ADDED_KEY)
    press(driver, driver.find_element(By.ID, "eld-test-button"))
    result = driver.find_element(By.ID, "eld-test-result")
    wait_until(driver, lambda d: result.get_attribute("data-outcome") == "healthy", "the test healthy")
    assert "beta-only-model" in result.text
    assert not added.requests_to("/v1/chat/completions")
    press(driver, driver.find_element(By.ID, "eld-add-button"))
    wait_until(driver, lambda d: status_colour(d, "beta") == GREEN, "beta added and green")
    wait_until(driver, lambda d: model_row(d, "beta-only-model") is not None, "beta's model listed")
    wait_until(driver, lambda d: model_row(d, "beta-only-model").get_attribute("data-routable") == "yes", "routable")
    assert "Added beta" in driver.find_element(By.ID, "eld-config-message").text
    assert driver.find_element(By.NAME, "api_key").get_attribute("value") == ""
    driver.save_screenshot(str(SCREENSHOTS / "04-added.png"))

    # Disable it: its status says so, and its model is no longer routable.
    click_action(driver, "beta", "disable")
    wait_until(driver, lambda d: backend_cell(d, "beta").get_attribute("data-status") == "disabled", "disabled")
    wait_until(driver, lambda d: model_row(d, "beta-only-model").get_attribute("data-routable") == "no", "not routable")
    # The static backend offers no delete, and says where it comes from.
    assert "declared by instance" in config_row(driver, "alpha").text
    assert not config_row(driver, "alpha").find_elements(By.CSS_SELECTOR, 'button[data-action="delete"]')

    # Delete it (the page asks first): gone from the backends and the catalogue.
    driver.execute_script("window.confirm = function () { return true; };")
    click_action(driver, "beta", "delete")
    wait_until(driver, lambda d: backend_cell(d, "beta") is None and config_row(d, "beta") is None, "beta gone")
    wait_until(driver, lambda d: model_row(d, "beta-only-model") is None, "its model gone")


def watch_traffic(driver, url: str) -> None:
    """Six requests through the gateway: the counts rise, the decisions list them, and the
    Traffic panel's scope and range switch its charts."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    for _ in range(6):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "tokens:5"}])
    wait_until(driver, lambda d: int(backend_cell(d, "alpha").get_attribute("data-requests") or 0) >= 6, "6 requests")
    wait_until(driver, lambda d: "6 requests" in d.find_element(By.ID, "eld-traffic-totals").text, "the totals")
    wait_until(
        driver,
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#eld-decisions tr[data-request-id]")) >= 6,
        "decisions",
    )
    assert "gpt-4o → alpha" in driver.find_element(By.ID, "eld-decisions").text
    # Tokens and cost: the default organisation's 6 requests of 5 prompt tokens each.
    wait_until(driver, lambda d: "default all keys 6 30" in d.find_element(By.ID, "eld-usage").text, "the usage")
    # The charts for one backend over 24 h, fetched from /dashboard/api/traffic.
    panel = driver.find_element(By.ID, "eld-traffic-panel")
    Select(driver.find_element(By.ID, "eld-traffic-scope")).select_by_value("backend:alpha")
    Select(driver.find_element(By.ID, "eld-traffic-range")).select_by_value("24h")
    wait_until(driver, lambda d: panel.get_attribute("data-scope") == "backend alpha 24h", "the 24 h charts")
    Select(driver.find_element(By.ID, "eld-traffic-scope")).select_by_value("")
    Select(driver.find_element(By.ID, "eld-traffic-range")).select_by_value("1h")
    wait_until(driver, lambda d: panel.get_attribute("data-scope") == "gateway 1h", "back to the gateway's hour")
    driver.save_screenshot(str(SCREENSHOTS / "05-traffic.png"))
    driver.execute_script("window.scrollTo(0, 0);")
    driver.save_screenshot(str(SCREENSHOTS / "06-overview.png"))  # the README's, docs/dashboard.png


def assert_no_raw_key(driver) -> None:
    frames = websocket_frames(driver)
    assert frames, "no websocket frames were logged"
    for key in (RAW_KEY, ADDED_KEY):
        assert key not in driver.page_source
        assert all(key not in frame for frame in frames)
    assert any("sk-…8888" in json.dumps(json.loads(frame), ensure_ascii=False) for frame in frames)


def websocket_frames(driver) -> list[str]:
    frames = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.webSocketFrameReceived":
            frames.append(message["params"]["response"]["payloadData"])
    return frames


def test_an_operator_watches_a_backend_go_red_and_green(data_dir):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver = browser()
    upstream = FakeProvider(name="alpha").start()
    upstream.on("GET", "/v1/models", openai_models("gpt-4o")).on("POST", "/v1/chat/completions", chat_upstream("alpha"))
    added = FakeProvider(name="beta").start()
    added.on("GET", "/v1/models", openai_models("beta-only-model")).on(
        "POST", "/v1/chat/completions", chat_upstream("beta")
    )
    directory = data_dir()
    create_superuser(directory)
    gateway = GatewayProcess(
        "--health-interval",
        "1000",
        "--backends",
        f"alpha:{upstream.url}/v1:{RAW_KEY}",
        data_dir=directory,
        worker=True,
        env={
            "REDIS_URL": "",
            "ELDRIC_DASHBOARD_PUSH_SECONDS": "1",
            "ELDRIC_DASHBOARD_USAGE_EVERY_SECONDS": "1",
            "ELDRIC_TRAFFIC_FLUSH_SECONDS": "0.5",
        },
    ).start()
    revived = None
    try:
        from selenium.webdriver.common.by import By

        # 1. Log in through the admin's form; the dashboard follows.
        driver.get(gateway.url + "/admin/login/?next=/dashboard/")
        driver.find_element(By.NAME, "username").send_keys("ops")
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

        def live(d) -> bool:
            found = d.find_elements(By.ID, "eld-connection")  # none while the login page is still shown
            return bool(found) and found[0].get_attribute("data-state") == "live"

        wait_until(driver, live, "the socket live")
        wait_until(driver, lambda d: status_colour(d, "alpha") == GREEN, "alpha green")
        driver.save_screenshot(str(SCREENSHOTS / "01-healthy.png"))
        loaded_at = driver.execute_script("return performance.timeOrigin")

        # The Instances panel: this instance, live, with the uptime and load its heartbeat reported.
        wait_until(driver, lambda d: instance_row(d).get_attribute("data-uptime") not in (None, ""), "the uptime")
        wait_until(driver, lambda d: "in flight" in instance_row(d).text, "the instance's load")
        wait_until(driver, lambda d: "none configured" in instance_row(d).text, "no controller, said so")

        # 2. The upstream stops: red within 5 s (the bar), without a reload.
        upstream.stop()
        wait_until(driver, lambda d: status_colour(d, "alpha") == RED, "alpha red", timeout=RED_WITHIN)
        wait_until(driver, lambda d: backend_cell(d, "alpha").get_attribute("data-status") == "unhealthy", "unhealthy")
        driver.save_screenshot(str(SCREENSHOTS / "02-unhealthy.png"))

        # 3. It returns: green again.
        revived = FakeProvider(name="alpha", port=upstream.port).start()
        revived.on("GET", "/v1/models", openai_models("gpt-4o")).on(
            "POST", "/v1/chat/completions", chat_upstream("alpha")
        )
        wait_until(driver, lambda d: status_colour(d, "alpha") == GREEN, "alpha green again")
        # The probe history saw both: uptime under 100 %, red and green cells in the bar.
        wait_until(driver, lambda d: 0 < float(backend_cell(d, "alpha").get_attribute("data-uptime")) < 100, "uptime")
        driver.save_screenshot(str(SCREENSHOTS / "03-recovered.png"))

        # 4. Add a backend through the form, see it healthy with its models; disable, delete it.
        add_disable_delete(driver, added)

        # 5. Traffic: the request count rises on the page, and the decisions are listed.
        watch_traffic(driver, gateway.url)
        assert driver.execute_script("return performance.timeOrigin") == loaded_at  # never reloaded

        # 6. No raw key in the page or in any frame the socket carried.
        assert_no_raw_key(driver)
    finally:
        driver.quit()
        gateway.stop()
        upstream.stop()
        added.stop()
        if revived is not None:
            revived.stop()
