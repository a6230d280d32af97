"""The wall screen in a real browser (issue 12): a running `faultline run --demo` serves /wall; a
headless Chromium opens it with a read token in the URL fragment, runs its script, and the page
shows what /wall/summary says — the open and serious faults, each city's row, the latest
serious faults and work orders, the deadlines at risk — in Chinese. Without a token, or with a
bad one, it says so instead of showing nothing."""

from __future__ import annotations

import asyncio
import html
import os
import re
import shutil
import socket
import subprocess
import sys

import httpx
import pytest

from service.support import ROOT, until_healthy

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NEEDS = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium; python3 dev.py test "
                                                    "installs it where it can (root, apt-get)")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _page_text(url: str, tmp_path) -> str:
    """The page's text once its script has run (Chromium's --dump-dom after a virtual 5 s)."""
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=5000", "--dump-dom", url,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    dom = out.decode()
    return html.unescape(re.sub(r"<[^>]+>", "|", dom))


def _cells(text: str) -> list[str]:
    return [c.strip() for c in text.split("|") if c.strip()]


@NEEDS
async def test_the_wall_page_shows_the_demo_in_a_real_browser(tmp_path):
    port = _port()
    env = {**os.environ, "FAULTLINE_HTTP_PORT": str(port),
           "FAULTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}
    run = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "run", "--demo", "--speed", "600", cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        token = ""
        while not token.startswith("fl_"):
            token = (await asyncio.wait_for(run.stdout.readline(), 60)).decode().strip()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10,
                                     headers={"Authorization": f"Bearer {token}"}) as http:
            await until_healthy(http)
            def settled(s: dict) -> dict:                  # what stays once the demo has run
                return {k: v for k, v in s.items() if k not in ("now", "at_risk")}
            for _ in range(240):                       # until the demo's serious faults are declared
                if (await http.get("/wall/summary")).json()["serious"]:
                    break
                await asyncio.sleep(0.5)
            base = f"http://127.0.0.1:{port}/wall"
            # The demo goes on while the page loads: compare the page with the summary only when
            # the summary was the same before and after it (the page then saw that state).
            for attempt in range(20):
                before = (await http.get("/wall/summary")).json()
                text = await _page_text(f"{base}#token={token}", tmp_path / f"p{attempt}")
                summary = (await http.get("/wall/summary")).json()
                if settled(before) == settled(summary):
                    break
                await asyncio.sleep(1)
            else:
                pytest.fail("the demo never held still for the length of a page load")
            cells = _cells(text)
            assert "集团客户专线监控大厅" in cells and "即将超时" in cells and "最新工单" in cells
            assert cells[cells.index("严重故障（在途）") - 1] == str(summary["serious_open"])
            assert cells[cells.index("在途故障") - 1] == str(summary["open"])
            for row in summary["cities"]:
                at = cells.index(row["city"], cells.index("各地市在途故障"))
                assert cells[at:at + 3] == [row["city"], str(row["open"]), str(row["serious"])]
            for fault in summary["serious"]:
                assert fault["fault_id"] in cells and fault["rule"] in cells
            for order in summary["work_orders"]:
                assert order["work_order_id"] in cells
            # deadlines at risk move with the demo's fast clock: each row shown is an open order
            risky = cells[cells.index("剩余（分钟）") + 1:cells.index("最新严重故障")]
            assert risky == ["无"] or all(re.fullmatch(r"W-[A-Z]+-\d{6}", c) for c in risky[::4])
            assert any(c.startswith("更新于 ") for c in cells)
            # no token: the page says what is needed; a bad one: that it was refused
            assert "需要令牌：在地址后加 #token=…" in _cells(await _page_text(base, tmp_path / "fresh"))
            refused = _cells(await _page_text(f"{base}#token=fl_not-a-token", tmp_path / "bad"))
            assert "连接失败：令牌无效或无权限（401）" in refused
    finally:
        run.terminate()
        await asyncio.wait_for(run.wait(), 60)
