"""The admin page at /admin, driven in real headless Chromium (Debian's, through Playwright)."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from ruamel.yaml import YAML

from tests.conftest import StartGateway
from tests.support.selfhosted import all_healthy, by_id, endpoint, gateway_config, wait_for
from tests.support.stack import ADMIN_TOKEN, Fake, GatewayProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "admin-page.png"
PAGE_KEY = "sk-page-SECRET-55e1a"
# What a headless Chromium needs as root on a machine with no network but loopback.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), (
        "Debian's chromium is needed: `make test` installs it (apt-get install chromium)"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def gateway(gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake]) -> GatewayProcess:
    config = gateway_config(cloud, [endpoint(gpus[0], "gpu-a"), endpoint(gpus[1], "gpu-b")], percentage=50)
    gateway = gateway_factory(config)
    wait_for(lambda: overview(gateway), all_healthy)
    for index in range(6):
        gateway.client().post("/v1/images/generations", json={"prompt": f"warm {index}"})
    return gateway


def overview(gateway: GatewayProcess) -> dict[str, Any]:
    document: dict[str, Any] = gateway.admin().get("/api/v1/admin/selfhosted").json()
    return document


def signed_in(browser: Browser, gateway: GatewayProcess) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{gateway.url}/admin")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#token", ADMIN_TOKEN)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#app")).to_be_visible()
    return page


def test_sign_in_see_cards_change_routing_add_and_delete(
    browser: Browser, gateway: GatewayProcess, gpus: list[Fake]
) -> None:
    page = signed_in(browser, gateway)
    cards = page.locator(".card")
    expect(cards).to_have_count(2)
    expect(page.locator('.card[data-endpoint-id="gpu-a"] .badge').first).to_have_text("health: healthy")
    expect(page.locator("#log tbody tr")).to_have_count(6)

    page.fill("#routing-percentage", "35")
    page.click("#routing-apply")
    expect(page.locator("#routing-message")).to_contain_text("Saved")
    assert overview(gateway)["routing"]["routing_percentage"] == 35
    saved = YAML(typ="safe").load(gateway.config_path.read_text())
    assert saved["plugins"][0]["config"]["routing"]["routing_percentage"] == 35

    page.click("#add-endpoint")
    page.fill("#f-name", "GPU C")
    page.fill("#f-url", gpus[2].url)
    page.fill("#f-api-key", PAGE_KEY)
    page.fill("#f-max", "3")
    page.click("#endpoint-save")
    expect(cards).to_have_count(3)
    created = by_id(overview(gateway))["gpu-c"]
    assert (created["max_concurrency"], created["api_key"]) == (3, "********")
    expect(page.locator('.card[data-endpoint-id="gpu-c"]')).to_contain_text("key set")
    assert PAGE_KEY not in page.content()

    page.locator('.card[data-endpoint-id="gpu-b"] button', has_text="Drain").click()
    expect(page.locator('.card[data-endpoint-id="gpu-b"] .badge.draining')).to_be_visible()
    assert by_id(overview(gateway))["gpu-b"]["status"] == "draining"

    page.locator('.card[data-endpoint-id="gpu-c"] button', has_text="Delete").click()
    expect(cards).to_have_count(2)
    assert sorted(by_id(overview(gateway))) == ["gpu-a", "gpu-b"]
    page.close()


def test_edit_and_refresh_from_the_page(browser: Browser, gateway: GatewayProcess) -> None:
    page = signed_in(browser, gateway)
    page.locator('.card[data-endpoint-id="gpu-a"] button', has_text="Edit").click()
    expect(page.locator("#f-name")).to_have_value("GPU-A")
    page.fill("#f-name", "GPU-B")
    page.click("#endpoint-save")
    expect(page.locator("#form-error")).to_have_text("an endpoint named 'GPU-B' already exists")
    page.fill("#f-name", "GPU-A")
    page.fill("#f-max", "5")
    page.click("#endpoint-save")
    expect(page.locator('.card[data-endpoint-id="gpu-a"]')).to_contain_text("0 / 5")
    page.click("#refresh-health")
    expect(page.locator("#refresh-health")).to_be_enabled()
    assert by_id(overview(gateway))["gpu-a"]["max_concurrency"] == 5
    page.close()


def test_the_token_stays_in_the_tab_only(browser: Browser, gateway: GatewayProcess) -> None:
    page = signed_in(browser, gateway)
    assert page.evaluate("sessionStorage.getItem('influgen.admin.token')") == ADMIN_TOKEN
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    page.reload()
    expect(page.locator(".card")).to_have_count(2)
    other_tab = browser.new_page()
    other_tab.goto(f"{gateway.url}/admin")
    expect(other_tab.locator("#login")).to_be_visible()
    page.click("#sign-out")
    expect(page.locator("#login")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('influgen.admin.token')") is None
    other_tab.close()
    page.close()


def test_a_wrong_token_is_refused_on_the_page(browser: Browser, gateway: GatewayProcess) -> None:
    page = browser.new_page()
    page.goto(f"{gateway.url}/admin")
    page.fill("#token", "not-the-admin-token-at-all")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("That token was refused.")
    expect(page.locator("#app")).to_be_hidden()
    page.close()


def test_screenshot(
    browser: Browser, gateway_factory: StartGateway, cloud: Fake, gpus: list[Fake], tmp_path: Path
) -> None:
    """The picture in the README: ``UPDATE_SCREENSHOT=1`` writes it to docs/."""
    endpoints = [
        endpoint(gpus[0], "gpu-a", name="Studio 4090", max_concurrency=2),
        endpoint(gpus[1], "gpu-b", name="Rack A100", max_concurrency=4, weight=8),
        endpoint(gpus[2], "gpu-c", name="Spare 3090", status="draining"),
    ]
    gateway = gateway_factory(gateway_config(cloud, endpoints, percentage=60))
    wait_for(lambda: overview(gateway), all_healthy)
    latencies = random.Random(7)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda index: post(gateway, latencies.uniform(0.05, 0.6)), range(24)))
    gpus[1].control.configure(fail="503")
    for _ in range(30):
        if by_id(overview(gateway))["gpu-b"]["circuit"]["state"] == "open":
            break
        post(gateway, 0.05)
    assert by_id(overview(gateway))["gpu-b"]["circuit"]["state"] == "open"
    page = signed_in(browser, gateway)
    expect(page.locator(".card")).to_have_count(3)
    expect(page.locator('.card[data-endpoint-id="gpu-b"]')).to_contain_text("half-open in")
    target = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / SCREENSHOT.name
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000
    page.close()


def post(gateway: GatewayProcess, latency: float) -> None:
    gateway.client().post(
        "/v1/images/generations", json={"prompt": "x"}, headers={"x-fake-latency": f"{latency:.3f}"}
    )
