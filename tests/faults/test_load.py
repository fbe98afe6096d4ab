"""A short bounded burst against a real `importer serve` while an import runs: every status answer
is right and only moves forward, and the import's final counts are exact. (Sustained load and
latency percentiles are bench/'s job: `make bench` reports status p50/p99 during imports.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.support import RANK, contacts, served, write_csv

CLIENTS = 50
REQUESTS = 2000
ROWS = 60_000


@pytest.mark.slow
def test_2000_status_requests_from_50_clients_during_an_import(tmp_path: Path) -> None:
    rows = contacts(ROWS)
    for i in range(1, ROWS + 1, 1000):
        rows[i][2] = "not-a-number"  # 60 bad rows: failures are counted under load too
    path = write_csv(tmp_path / "big.csv", rows)
    with served(tmp_path, chunk_size="500") as (url, _proc, tokens):
        auth = {"Authorization": f"Bearer {tokens['a']}"}
        other = {"Authorization": f"Bearer {tokens['b']}"}
        accepted: list[int] = []

        async def client(n: int, ready: asyncio.Event, results: list[tuple[int, str, int]], errors: list[str]) -> None:
            seen = (0, 0, 0)  # (state rank, processed, percentage): each client's view only moves forward
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                await http.get("/health")  # connected before the import starts
                await ready.wait()
                ticket = accepted[0]
                for k in range(REQUESTS // CLIENTS):
                    if (n + k) % 10 == 0:  # some requests come from another tenant: always 404
                        got = await http.get(f"/imports/{ticket}", headers=other)
                        if got.status_code != 404:
                            errors.append(f"tenant b got {got.status_code}")
                        continue
                    got = await http.get(f"/imports/{ticket}", headers=auth)
                    if got.status_code != 200:
                        errors.append(f"{got.status_code}: {got.text[:200]}")
                        continue
                    body = got.json()
                    now = (RANK[body["state"]], body["rows"]["processed"], body["percentage"])
                    if any(a < b for a, b in zip(now, seen, strict=True)):
                        errors.append(f"went back from {seen} to {now}")
                    seen = now
                    results.append((n, body["state"], body["rows"]["processed"]))

        async def burst() -> tuple[list[tuple[int, str, int]], list[str]]:
            results: list[tuple[int, str, int]] = []
            errors: list[str] = []
            ready = asyncio.Event()
            clients = [asyncio.create_task(client(n, ready, results, errors)) for n in range(CLIENTS)]
            async with httpx.AsyncClient(base_url=url, timeout=60) as http:
                resp = await http.post("/imports", data={"dataset": "contacts"}, files={"file": ("big.csv", path.read_bytes())}, headers=auth)
            assert resp.status_code == 202, resp.text
            accepted.append(resp.json()["id"])
            ready.set()
            await asyncio.gather(*clients)
            return results, errors

        start = time.monotonic()
        results, errors = asyncio.run(burst())
        took = time.monotonic() - start
        assert not errors, errors[:10]
        assert len(results) == REQUESTS - REQUESTS // 10
        assert took < 90, took
        print(f"burst: {REQUESTS} requests in {took:.1f}s; states seen: {sorted({s for _, s, _ in results})}")
        states = {state for _, state, _ in results}
        assert "processing" in states or "accepted" in states, "the burst never saw the import running"

        deadline = time.monotonic() + 120
        ticket = accepted[0]
        while (final := httpx.get(f"{url}/imports/{ticket}", headers=auth).json())["state"] not in ("completed", "failed"):
            assert time.monotonic() < deadline, final
            time.sleep(0.1)
        assert final["state"] == "completed"
        assert final["rows"] == {
            "total": ROWS, "processed": ROWS, "created": ROWS - 60, "updated": 0, "unchanged": 0,
            "ignored": 0, "failed": 60, "skipped": 0, "rolled_back": 0,
        }
        dataset = httpx.get(f"{url}/datasets/contacts", headers=auth).json()
        assert dataset["records"] == ROWS - 60
