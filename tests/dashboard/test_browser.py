"""End to end in headless Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by
Selenium; ``make test`` installs them): an operator logs in, watches a backend turn red when
its upstream stops and green when it returns, without reloading, sees request counts rise,
and no raw key ever reaches the page or its websocket. Screenshots go to var/screenshots/."""

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
RED = (220, 38, 38)  # STATUSES["unhealthy"] in backends/status.py, #dc2626
GREEN = (22, 163, 74)  # STATUSES["healthy"], #16a34a
DEADLINE = 20  # seconds; a 1 s probe interval and a 1 s push make it a few seconds in practice


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
    directory = data_dir()
    create_superuser(directory)
    gateway = GatewayProcess(
        "--health-interval",
        "1000",
        "--backends",
        f"alpha:{upstream.url}/v1:{RAW_KEY}",
        data_dir=directory,
        worker=True,
        env={"REDIS_URL": "", "ELDRIC_DASHBOARD_PUSH_SECONDS": "1", "ELDRIC_TRAFFIC_FLUSH_SECONDS": "0.5"},
    ).start()
    revived = None
    frames: list[str] = []
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

        # 2. The upstream stops: red, without a reload.
        upstream.stop()
        wait_until(driver, lambda d: status_colour(d, "alpha") == RED, "alpha red")
        wait_until(driver, lambda d: backend_cell(d, "alpha").get_attribute("data-status") == "unhealthy", "unhealthy")
        driver.save_screenshot(str(SCREENSHOTS / "02-unhealthy.png"))

        # 3. It returns: green again.
        revived = FakeProvider(name="alpha", port=upstream.port).start()
        revived.on("GET", "/v1/models", openai_models("gpt-4o")).on(
            "POST", "/v1/chat/completions", chat_upstream("alpha")
        )
        wait_until(driver, lambda d: status_colour(d, "alpha") == GREEN, "alpha green again")
        driver.save_screenshot(str(SCREENSHOTS / "03-recovered.png"))

        # 5. Traffic: the request count rises on the page.
        client = OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
        for _ in range(6):
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "tokens:5"}])
        wait_until(
            driver, lambda d: int(backend_cell(d, "alpha").get_attribute("data-requests") or 0) >= 6, "6 requests"
        )
        wait_until(driver, lambda d: "6 requests" in d.find_element(By.ID, "eld-traffic-totals").text, "the totals")
        driver.save_screenshot(str(SCREENSHOTS / "04-traffic.png"))
        assert driver.execute_script("return performance.timeOrigin") == loaded_at  # never reloaded

        # 6. No raw key in the page or in any frame the socket carried.
        frames = websocket_frames(driver)
        assert frames, "no websocket frames were logged"
        assert RAW_KEY not in driver.page_source
        assert all(RAW_KEY not in frame for frame in frames)
        assert any("sk-…8888" in json.dumps(json.loads(frame), ensure_ascii=False) for frame in frames)
    finally:
        driver.quit()
        gateway.stop()
        upstream.stop()
        if revived is not None:
            revived.stop()
