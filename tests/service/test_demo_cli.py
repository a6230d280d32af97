"""`faultline run --demo --exit-after-demo`: a real process, a real port, the live log on stdout."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from service.support import ROOT

# Through main() as the `faultline` script does (`-m services.cli` would load the module twice).
FAULTLINE = [sys.executable, "-c", "import sys; from services.cli import main; sys.exit(main())"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_demo_runs_to_the_end_and_prints_serious_faults_work_orders_and_sms():
    proc = subprocess.run(
        [*FAULTLINE, "run", "--demo", "--exit-after-demo", "--speed", "2000",
         "--http-port", str(_free_port())],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    # Ids are per city: the demo runs the production runtime (F-<city>-…).
    assert "故障 F-GZ-000001 打开  南方航空集团公司 GZ-INT-0001 中断 (root GZ-OTN-A:1-3-1)" in out
    assert "严重 F-GZ-000001 SF-3" in out and "SF-6b" in out
    assert "工单 W-GZ-" in out and "【集团客户严重故障】" in out
    assert "短信 F-" in out and "【进展|" in out
    assert "demo: this database already holds inputs" not in out        # a fresh database
    assert out.rstrip().endswith("演示结束")
    # Each decision printed once: the printer is a consumer group of its own on
    # faultline.decisions, where the loops publish each record once.
    said = [line for line in out.splitlines()
            if line.split("  ", 1)[-1].startswith(("故障 ", "严重 ", "工单 W"))]
    assert said and len(said) == len(set(said))


def test_exit_after_demo_needs_demo():
    proc = subprocess.run([*FAULTLINE, "run", "--exit-after-demo",
                           "--inventory", str(ROOT / "samples" / "inventory.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--exit-after-demo" in proc.stderr
