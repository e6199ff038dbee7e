"""How fast does the status UI show 1000 objects in a browser?

Everything real: the local control plane, one git repository served from memory over
smart HTTP, fluxd in-process with its UI listener, N GitRepositories on that repository
(Ready once fetched), and Debian's chromium driven by playwright. Measured in the
browser, per run:

- **load**: from navigation to N rows in the overview table (the page, its script, the
  ``/api/objects`` answer and the rendering), and **render**, the part of it after the
  ``/api/objects`` answer arrived (the browser's resource timing);
- **filter**: re-rendering the table after a change of the state filter and back (two
  renders of N rows, from memory);
- **graph**: from navigation to N nodes drawn in the dependency graph.

Prints every run, the medians, and the process's peak RSS (fluxd and this harness).

Usage: ``python bench/ui_overview.py [--n 1000] [--runs 5]`` (needs /usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
from typing import Any

from playwright.async_api import Page, async_playwright

from fluxd.api import GIT_REPOSITORY
from fluxd.daemon.manager import Daemon
from fluxd.daemon.options import Options
from fluxd.dev.controlplane import LocalControlPlane, install_crds
from fluxd.dev.demo import demo_repository, serve_repository
from fluxd.kube import client
from fluxd.kube.objects import resource_of
from fluxd.kube.resources import NAMESPACES

NAMESPACE = "bench"
CHROMIUM = "/usr/bin/chromium"
ROWS = "#objects tr[data-key]"


async def create_sources(api: Any, url: str, n: int) -> None:
    semaphore = asyncio.Semaphore(32)

    async def one(index: int) -> None:
        async with semaphore:
            await client.create(
                api,
                resource_of(GIT_REPOSITORY),
                {
                    "apiVersion": GIT_REPOSITORY.api_version,
                    "kind": GIT_REPOSITORY.kind,
                    "metadata": {"name": f"app-{index:04d}", "namespace": NAMESPACE},
                    "spec": {"interval": "1h", "url": url, "ref": {"branch": "main"}},
                },
            )

    await asyncio.gather(*(one(index) for index in range(n)))


async def all_ready(api: Any, n: int) -> None:
    async with asyncio.timeout(600):
        while True:
            listed = await client.list_page(
                api, resource_of(GIT_REPOSITORY), NAMESPACE, limit=n + 1
            )
            ready = sum(
                1
                for item in listed["items"]
                for condition in (item.get("status") or {}).get("conditions", [])
                if condition["type"] == "Ready" and condition["status"] == "True"
            )
            if ready >= n:
                return
            await asyncio.sleep(0.5)


async def timings(page: Page, base: str, n: int) -> tuple[float, float, float, float]:
    await page.goto("about:blank")
    await page.goto(f"{base}/#/")
    await page.wait_for_function(f"document.querySelectorAll('{ROWS}').length >= {n}")
    load = float(await page.evaluate("performance.now()"))
    answered = float(
        await page.evaluate(
            """performance.getEntriesByType('resource')
                .filter((entry) => entry.name.includes('/api/objects'))
                .map((entry) => entry.responseEnd)[0]"""
        )
    )
    filtered = float(
        await page.evaluate(
            """async (n) => {
                const select = document.querySelector('#filter-state');
                const started = performance.now();
                for (const value of ['ready', '']) {
                    select.value = value;
                    select.dispatchEvent(new Event('change', {bubbles: true}));
                }
                while (document.querySelectorAll('#objects tr[data-key]').length < n) {
                    await new Promise((done) => requestAnimationFrame(done));
                }
                return performance.now() - started;
            }""",
            n,
        )
    )
    await page.goto("about:blank")
    await page.goto(f"{base}/#/graph")
    await page.wait_for_function(
        f"document.querySelectorAll('#graph g.node[data-key]').length >= {n}"
    )
    graph = float(await page.evaluate("performance.now()"))
    return load, load - answered, filtered, graph


async def measure(
    kubeconfig: str, url: str, n: int, runs: int
) -> list[tuple[float, float, float, float]]:
    api = await client.connect(kubeconfig)
    try:
        await client.create(api, NAMESPACES, {"metadata": {"name": NAMESPACE}})
        options = Options(
            metrics_addr="127.0.0.1:0", artifact_addr="127.0.0.1:0", ui_addr="127.0.0.1:0"
        )
        daemon = Daemon(api, options)
        task = asyncio.create_task(daemon.run())
        try:
            await create_sources(api, url, n)
            await all_ready(api, n)
            host, port = daemon.addresses["ui"]
            base = f"http://{host}:{port}"
            results = []
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                page = await browser.new_page(viewport={"width": 1400, "height": 900})
                for number in range(1, runs + 1):
                    load, render, filtered, graph = await timings(page, base, n)
                    results.append((load, render, filtered, graph))
                    print(
                        f"  run {number}: load {load:.0f} ms (render {render:.0f} ms),"
                        f" filter {filtered:.0f} ms, graph {graph:.0f} ms",
                        flush=True,
                    )
                await browser.close()
            return results
        finally:
            daemon.shutdown()
            await task
    finally:
        await api.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    repo = demo_repository()
    with LocalControlPlane() as plane, serve_repository(repo) as url:
        install_crds(plane.kubeconfig)
        results = asyncio.run(measure(str(plane.kubeconfig), url, args.n, args.runs))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load, render, filtered, graph = (
        statistics.median(column) for column in zip(*results, strict=True)
    )
    print(
        f"{args.n} objects, median of {len(results)} runs: overview load {load:.0f} ms"
        f" (render after the answer {render:.0f} ms), filter re-render {filtered:.0f} ms,"
        f" graph {graph:.0f} ms;"
        f" peak RSS {peak:.0f} MiB (fluxd and this harness, one process)"
    )


if __name__ == "__main__":
    main()
