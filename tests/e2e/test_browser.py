"""The web pages in headless Chromium against a real `importer serve`: the live import page and /schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.cdp import Browser, need_chromium
from tests.support import contacts, write_csv


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """A headless Chromium with a profile of its own under the test's tmp dir."""
    b = Browser(need_chromium(), tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()


def test_the_import_page_follows_a_real_import_to_100_percent(
    acme: tuple[str, dict[str, str], str], browser: Browser, tmp_path: Path
) -> None:
    url, _, token = acme
    rows = contacts(150_000)
    for r in rows[1 :: 9973]:
        r[2] = "not a number"
    path = write_csv(tmp_path / "people.csv", rows)
    auth = {"Authorization": f"Bearer {token}"}
    with path.open("rb") as fh:
        resp = httpx.post(f"{url}/imports", headers=auth, data={"dataset": "contacts"}, files={"file": ("people.csv", fh)}, timeout=120)
    assert resp.status_code == 202, resp.text
    ticket = resp.json()["id"]

    browser.goto(f"{url}/ui/imports/{ticket}#token={token}")
    assert browser.evaluate("location.hash") == ""  # the token left the URL for sessionStorage
    assert browser.evaluate("sessionStorage.getItem('importer.token')") == token
    seen: list[int] = []
    while True:  # read the bar as the page shows it, until the import has ended
        state = browser.wait_for("document.querySelector('[role=progressbar]') && "
                                 "[document.querySelector('[role=progressbar]').getAttribute('aria-valuenow'), "
                                 "document.querySelector('.title-row .badge').textContent]")
        seen.append(int(state[0]))
        if state[1] in ("completed", "failed", "canceled"):
            break
        browser.wait_for(f"document.querySelector('[role=progressbar]').getAttribute('aria-valuenow') != '{state[0]}' || "
                         "document.querySelector('.title-row .badge').textContent != 'processing'", timeout=120)
    final = httpx.get(f"{url}/imports/{ticket}", headers=auth).json()
    assert final["state"] == "completed" and final["rows"]["failed"] == 16
    assert any(0 < p < 100 for p in seen), seen  # the bar moved on its way
    assert seen == sorted(seen) and seen[-1] == 100
    browser.wait_for("document.querySelector('#failures table') !== null")
    counts = browser.evaluate(
        "Object.fromEntries([...document.querySelectorAll('[data-count]')]"
        ".map(c => [c.dataset.count, c.querySelector('.value').textContent.replace(/\\D/g, '')]))"
    )
    assert counts["total"] == "150000" and counts["created"] == str(final["rows"]["created"]) and counts["failed"] == "16"
    assert browser.evaluate("document.querySelector('#pct').textContent") == "100%"
    # The timeline follows the log over SSE (polled every 0.2 s), the badge the status: the last event may come a moment later.
    browser.wait_for("document.querySelector('#timeline').innerText.includes('Completed')")
    timeline = browser.evaluate("document.querySelector('#timeline').innerText")
    assert "Completed" in timeline and timeline.count("Chunk applied") == 30
    assert "line 2" in browser.evaluate("document.querySelector('#failures').innerText")
    assert browser.evaluate("document.querySelector('#live').textContent") == "finished"
    shot = browser.screenshot(tmp_path / "import-page.png")
    assert shot.stat().st_size > 20_000

    browser.goto(f"{url}/ui/")  # the list: same tab, so the token is still there
    row = browser.wait_for(f"document.querySelector('tr[data-id=\"{ticket}\"]')?.innerText")
    assert "contacts" in row and "completed" in row and "people.csv" in row
    browser.screenshot(tmp_path / "imports-list.png")
    assert not [c for c in browser.console if "rror" in c], browser.console


def test_without_a_token_the_page_asks_for_one(acme: tuple[str, dict[str, str], str], browser: Browser, tmp_path: Path) -> None:
    url, _, token = acme
    browser.goto(f"{url}/ui/")
    browser.wait_for("document.querySelector('#signin-form') !== null")
    browser.evaluate("document.querySelector('#token').value = 'wrong'; document.querySelector('#signin-form').requestSubmit()")
    assert "refused" in browser.wait_for("document.querySelector('#signin-error')?.hidden === false && document.querySelector('#signin-error').textContent")
    browser.evaluate(f"document.querySelector('#token').value = {json.dumps(token)}; document.querySelector('#signin-form').requestSubmit()")
    assert "No imports yet" in browser.wait_for("document.querySelector('.empty')?.textContent")
    browser.screenshot(tmp_path / "signed-in.png")


def test_landing_page_and_the_api_docs_render_offline(acme: tuple[str, dict[str, str], str], browser: Browser, tmp_path: Path) -> None:
    url, _, _ = acme
    browser.goto(f"{url}/")
    links = browser.evaluate("[...document.querySelectorAll('a')].map(a => a.getAttribute('href'))")
    assert {"/ui/", "/schema", "/health"} <= set(links)
    browser.screenshot(tmp_path / "landing.png")
    browser.goto(f"{url}/schema")
    paths = browser.wait_for(
        "[...document.querySelectorAll('.opblock-summary-path')].map(e => e.textContent.replace(/\\u200b/g, ''))", timeout=60
    )
    assert "/imports" in paths and "/imports/{ticket}/errors.csv" in paths, paths
    assert browser.evaluate("document.querySelector('.info .title').textContent").startswith("importer")
    browser.screenshot(tmp_path / "schema.png")
