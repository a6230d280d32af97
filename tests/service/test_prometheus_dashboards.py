"""The dashboards and alerts against a real Prometheus (issue 12): promtool accepts the
scrape configuration and the rules; a real `prometheus` scrapes a running `faultline run`
fed with the demo storm, and every panel query of every generated dashboard parses and
returns data over the run, every `faultline_` metric a dashboard or a rule names is exported,
and every alert expression parses."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from service.support import ROOT

DEPLOY = ROOT / "deploy"
PROMTOOL, PROMETHEUS = shutil.which("promtool"), shutil.which("prometheus")
NEEDS = pytest.mark.skipif(PROMTOOL is None or PROMETHEUS is None,
                           reason="needs Debian's prometheus package (promtool, prometheus); python3 dev.py "
                                  "test installs it where it can (root, apt-get)")
METRIC = re.compile(r"\bfaultline_[a-z_]*[a-z]\b")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _targets() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every panel query of every generated dashboard."""
    out = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for panel in doc["panels"]:
            for target in panel.get("targets", []):
                out.append((path.stem, panel["title"], target["expr"]))
    return out


def _rules() -> list[str]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text(encoding="utf-8"))
    return [r["expr"] for g in doc["groups"] for r in g["rules"]]


@NEEDS
def test_promtool_accepts_the_scrape_configuration_and_the_alerting_rules(tmp_path):
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    config["rule_files"] = [str(DEPLOY / "prometheus" / "rules.yml")]     # the container's path, here
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    for argv in (["check", "config", str(tmp_path / "prometheus.yml")],
                 ["check", "rules", str(DEPLOY / "prometheus" / "rules.yml")]):
        done = subprocess.run([PROMTOOL, *argv], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout + done.stderr


@NEEDS
async def test_every_dashboard_query_returns_data_from_a_real_prometheus_scraping_the_demo(tmp_path):
    http_port, prom_port = _port(), _port()
    env = {**os.environ, "FAULTLINE_HTTP_PORT": str(http_port),
           "FAULTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}
    run = subprocess.Popen([sys.executable, "-m", "services.cli", "run", "--demo", "--speed", "600"],
                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(DEPLOY / "prometheus" / "rules.yml")],
              "scrape_configs": [{"job_name": "faultline-run",
                                  "static_configs": [{"targets": [f"127.0.0.1:{http_port}"]}]}]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom = subprocess.Popen([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = time.time()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{prom_port}", timeout=10) as api:
            async def query(expr: str, **params) -> dict:
                path = "/api/v1/query_range" if "start" in params else "/api/v1/query"
                return (await api.get(path, params={"query": expr, **params})).json()

            # At ×600 the demo's storm is through in ~10 s (its faults turn serious within 3 s);
            # 12 s of 1 s scrapes give every rate() window its samples.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    got = await query('sum(faultline_records_total{type="fault.serious"})')
                    if got["data"]["result"] and float(got["data"]["result"][0]["value"][1]) > 0 \
                            and time.time() - started > 12:
                        break
                except (httpx.TransportError, KeyError, ValueError):
                    pass
                await asyncio.sleep(1)
            window = {"start": started, "end": time.time(), "step": "1"}
            empty, broken = [], []
            for board, title, expr in _targets():
                promql = expr.replace("$__rate_interval", "15s").replace("$city", ".*")
                answer = await query(promql, **window)
                if answer.get("status") != "success":
                    broken.append((board, title, promql, answer.get("error")))
                elif not answer["data"]["result"]:
                    empty.append((board, title, promql))
            assert not broken, broken
            assert not empty, empty
            # every faultline_ metric a dashboard or a rule names is exported by `faultline run --demo`
            named = {m for _b, _t, e in _targets() for m in METRIC.findall(e)}
            named |= {m for e in _rules() for m in METRIC.findall(e)}
            exported = {s["__name__"] for s in (await api.get("/api/v1/series", params={
                "match[]": '{__name__=~"faultline_.+"}', "start": started}))
                .json()["data"]}
            missing = {m for m in named if m not in exported}
            assert not missing, sorted(missing)
            for expr in _rules():                      # every alert expression parses and runs
                assert (await query(expr))["status"] == "success", expr
            cities = (await api.get("/api/v1/label/city/values",
                                    params={"match[]": "faultline_faults_open", "start": started})).json()
            assert "GZ" in cities["data"]              # the dashboards' 地市 variable has values
    finally:
        run.terminate()
        prom.terminate()
        run.wait(30)
        prom.wait(30)
