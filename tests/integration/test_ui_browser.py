"""The status UI in a real browser: Debian's chromium driven by playwright, against a
daemon reconciling real objects on the test control plane.

What a user sees: the overview lists the namespace's objects with their state; a failing
one is red; the Kustomization's page shows its inventory and events; a change made
outside the browser (a GitRepository pointed at a dead server) turns its row red with no
reload; the graph draws the source feeding the Kustomization. Screenshots of the
overview, an object page and the graph go to ``$FLUXD_UI_SCREENSHOTS`` (default
``build/ui-screenshots``), the folder the README names.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes_asyncio.client import ApiClient
from playwright.async_api import Page, async_playwright

from fluxd.api import GIT_REPOSITORY, KUSTOMIZATION
from tests.gitservers import GitHTTPServer, GitRemote, free_port
from tests.integration.conftest import Fluxd, namespaced_fluxd
from tests.integration.kustomizations import configmap, kustomization, setup_source

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("FLUXD_UI_SCREENSHOTS", "build/ui-screenshots"))
TIMEOUT_MS = 20_000


@pytest.fixture
async def ui_fluxd(api_client: ApiClient, namespace: str) -> AsyncIterator[Fluxd]:
    async with namespaced_fluxd(api_client, namespace, ui_addr="127.0.0.1:0") as running:
        yield running


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
async def page(ui_fluxd: Fluxd) -> AsyncIterator[Page]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} missing: scripts/test installs Debian's chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            tab = await context.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            yield tab
            assert errors == [], f"JavaScript errors on the page: {errors}"
        finally:
            await browser.close()


def ui_url(fluxd: Fluxd) -> str:
    host, port = fluxd.daemon.addresses["ui"]
    return f"http://{host}:{port}"


async def test_overview_object_page_live_updates_and_graph(
    ui_fluxd: Fluxd,
    page: Page,
    screenshots: Path,
    git_remote: GitRemote,
    git_http: GitHTTPServer,
) -> None:
    fluxd = ui_fluxd
    ns = fluxd.namespace
    tab = page
    git_remote.commit({"apps/app.yaml": configmap(ns, "app")})
    await setup_source(fluxd, git_remote, git_http)
    await fluxd.create(KUSTOMIZATION, "apps", kustomization("./apps"))
    await fluxd.wait_ready(KUSTOMIZATION, "apps")
    dead = f"http://127.0.0.1:{free_port()}/nothing.git"
    await fluxd.create(GIT_REPOSITORY, "broken", {"interval": "1h", "url": dead})

    await tab.goto(f"{ui_url(fluxd)}/#/", timeout=TIMEOUT_MS)
    source_row = tab.locator(f'tr[data-key="GitRepository/{ns}/source"]')
    await source_row.wait_for(timeout=TIMEOUT_MS)
    assert await source_row.get_attribute("data-state") == "ready"
    assert "master@sha1:" in (await source_row.inner_text())
    broken_row = tab.locator(f'tr[data-key="GitRepository/{ns}/broken"][data-state="failed"]')
    await broken_row.wait_for(timeout=TIMEOUT_MS)
    assert "state-failed" in (await broken_row.get_attribute("class") or "")
    await tab.select_option("#filter-state", "failed")
    assert await tab.locator("#objects tr[data-key]").count() == 1
    await tab.select_option("#filter-state", "")
    await tab.screenshot(path=str(screenshots / "overview.png"), full_page=True)

    await tab.locator(f'tr[data-key="Kustomization/{ns}/apps"]').click()
    inventory = tab.locator(f'#inventory li[data-id="{ns}_app__ConfigMap"]')
    await inventory.wait_for(timeout=TIMEOUT_MS)
    await tab.locator('#inventory li[data-id][data-health="Current"]').first.wait_for(
        timeout=TIMEOUT_MS
    )
    assert "ReconciliationSucceeded" in await tab.locator("#events").inner_text()
    await tab.screenshot(path=str(screenshots / "object.png"), full_page=True)

    # A change made outside the browser shows without a reload.
    await tab.goto(f"{ui_url(fluxd)}/#/", timeout=TIMEOUT_MS)
    await source_row.wait_for(timeout=TIMEOUT_MS)
    marker = await tab.evaluate("window.__fluxdMarker = 'no reload'")
    await fluxd.patch(GIT_REPOSITORY, "source", {"spec": {"url": dead}})
    await tab.locator(f'tr[data-key="GitRepository/{ns}/source"][data-state="failed"]').wait_for(
        timeout=TIMEOUT_MS
    )
    assert await tab.evaluate("window.__fluxdMarker") == marker

    await tab.goto(f"{ui_url(fluxd)}/#/graph", timeout=TIMEOUT_MS)
    node = tab.locator(f'#graph g.node[data-key="Kustomization/{ns}/apps"]')
    await node.wait_for(timeout=TIMEOUT_MS)
    assert await tab.locator(f'#graph g.node[data-key="GitRepository/{ns}/source"]').count() == 1
    failed = tab.locator(f'#graph g.node[data-key="GitRepository/{ns}/broken"]')
    assert await failed.get_attribute("data-state") == "failed"
    await tab.screenshot(path=str(screenshots / "graph.png"), full_page=True)
    await node.click()
    await tab.locator("#object").wait_for(timeout=TIMEOUT_MS)
    assert f"#/object/Kustomization/{ns}/apps" in tab.url
