"""The weekly report's HTML in headless Chromium (Debian's ``chromium``, driven by
Playwright, nothing downloaded): it renders without console errors or any request
outside the file itself, every chart is drawn, and it prints to PDF.

The screenshot and the PDF are written to ``$DRIFTD_TEST_ARTIFACTS/report`` when that
is set (CI keeps them), else to the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from report_seed import Seeded

from driftd.report import generate, parse_week

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    root = os.environ.get("DRIFTD_TEST_ARTIFACTS")
    folder = Path(root) / "report" if root else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_report_renders_offline_in_chromium_and_prints(seeded: Seeded, artifacts: Path) -> None:
    if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
        pytest.skip(f"no {CHROMIUM} (apt-get install chromium); CI must have it")
    from playwright.sync_api import sync_playwright

    written = generate(seeded.app, parse_week("2026-W46", "Europe/Berlin"))
    assert written.bytes < 2_000_000
    expected = {
        "rates",
        "daily-volume",
        "daily-cost",
        "segments-channel",
        "cost-curve",
        "review-load",
    }
    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "request",
                lambda r: None if r.url == written.html.as_uri() else outside.append(r.url),
            )
            page.goto(written.html.as_uri(), wait_until="load")
            drawn = page.eval_on_selector_all(
                "svg[data-plot]",
                """svgs => svgs.map(s => {
                    const box = s.getBoundingClientRect();
                    return [s.dataset.plot, box.width, box.height, s.querySelectorAll(
                        'rect, polyline, circle, line').length];
                })""",
            )
            assert page.title().startswith("fraud: weekly report 2026-W46")
            assert page.locator("p.lead").inner_text().startswith("At the current threshold (0.20)")
            page.screenshot(path=str(artifacts / "weekly-report.png"), full_page=True)
            page.pdf(path=str(artifacts / "weekly-report.pdf"), format="A4", print_background=True)
        finally:
            browser.close()
    assert errors == [] and outside == []
    plots = {name: (width, height, marks) for name, width, height, marks in drawn}
    assert expected <= set(plots), plots
    for name, (width, height, marks) in plots.items():
        assert width > 300 and height > 100 and marks > 3, (name, plots[name])
    pdf = (artifacts / "weekly-report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    assert (artifacts / "weekly-report.png").stat().st_size > 10_000
    shutil.copy(written.html, artifacts / "weekly-report.html")
