"""Real NMS feeds into a real `faultline run` (issue 11): util-linux `logger` over UDP and TCP
(newline-framed and octet-counted) and net-snmp's `snmptrap` reach the syslog and trap
listeners; their messages become normalized alarms in the TMF642 alarm list and, on an
inventory that knows the resource, open faults. Malformed input of every kind, a flood of it
included, ends in the dead-letter store (`rejected`) with a readable reason and its bytes, and
the listeners keep serving."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys

import httpx
import pytest

from service.support import ROOT, until_healthy

pytestmark = pytest.mark.asyncio

SAMPLE = json.loads((ROOT / "samples" / "inventory.json").read_text())
HOST = socket.gethostname().split(".")[0]  # what logger --rfc3164 puts in the header
LOGGER, SNMPTRAP = shutil.which("logger"), shutil.which("snmptrap")
TMF642 = "/tmf-api/alarm/v4/alarm"


def _inventory(tmp_path) -> str:
    """The sample plus three internet lines of C-NH, each over one device port the feeds name."""
    doc = copy.deepcopy(SAMPLE)
    for n, resource in (
        (1, f"{HOST}:GigabitEthernet0/0/1"),
        (2, "127.0.0.1:GigabitEthernet0/0/3"),
        (3, "127.0.0.1:gei-0/1/0/1"),
    ):
        doc["resources"].append(
            {"resource_id": resource, "layer": "data", "city": "GZ", "maintainer": "city"}
        )
        doc["circuits"].append(
            {
                "circuit_id": f"GZ-INT-900{n}",
                "customer_id": "C-NH",
                "service_type": "internet",
                "a_city": "GZ",
                "z_city": None,
                "span": "local",
                "maintenance_transferred": False,
                "paths": [[resource]],
            }
        )
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(doc))
    return str(path)


def _ports(n: int) -> list[int]:
    out = []
    for _ in range(n):
        with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            out.append(port)
    return out


async def _run(*argv: str, env: dict | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, (argv, out, err)


async def _vrp_link(udp_port: int, state: str) -> None:
    """A Huawei VRP line-protocol line over UDP (RFC 3164, the device's local time in Beijing)."""
    await _run(LOGGER, "--rfc3164", "-d", "-n", "127.0.0.1", "-P", str(udp_port), "-p", "local7.err",
               "-t", "vrp", "%%01IFNET/4/LINK_STATE(l)[12]:The line protocol IP on the interface "
               f"GigabitEthernet0/0/1 has entered the {state} state.", env={"TZ": "Asia/Shanghai"})


def _v3_users(tmp_path):
    path = tmp_path / "snmp-users.yaml"
    path.write_text('users: [{name: noc, engine_id: "8000000001020304", auth: SHA, auth_key: authpass123, '
                    "priv: AES, priv_key: privpass123}]\n")
    return path


async def _until(check, timeout_s: float = 30.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        got = await check()
        if got or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.2)


@pytest.mark.skipif(
    LOGGER is None or SNMPTRAP is None,
    reason="needs util-linux logger and net-snmp snmptrap (Debian: bsdutils, snmp); "
    "python3 dev.py test installs them where it can",
)
async def test_logger_and_snmptrap_reach_faultline_run_as_alarms_and_open_faults(tmp_path):
    http_port, udp_port, tcp_port, trap_port = _ports(4)
    db = tmp_path / "run.sqlite3"
    env = {
        **os.environ,
        "FAULTLINE_DATABASE_URL": f"sqlite:///{db}",
        "FAULTLINE_HTTP_PORT": str(http_port),
        "FAULTLINE_SYSLOG_UDP_PORT": str(udp_port),
        "FAULTLINE_SYSLOG_TCP_PORT": str(tcp_port),
        "FAULTLINE_SNMP_TRAP_PORT": str(trap_port),
        "FAULTLINE_SNMP_V3_USERS": str(_v3_users(tmp_path)),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        "run",
        "--inventory",
        _inventory(tmp_path),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    snmp_env = {"SNMPCONFPATH": str(tmp_path), "SNMP_PERSISTENT_DIR": str(tmp_path)}
    try:
        token = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{http_port}", timeout=10, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            await until_healthy(http)
            # Garbage first, and a flood of it: the listeners must keep serving the good lines.
            with socket.socket(type=socket.SOCK_DGRAM) as udp:
                for n in range(300):
                    udp.sendto(b"<999>flood %d \xff\xfe" % n, ("127.0.0.1", udp_port))
                    udp.sendto(b"\x30\x82\xff\xff garbage", ("127.0.0.1", trap_port))
            with socket.create_connection(("127.0.0.1", tcp_port)) as tcp:
                tcp.sendall(b"\x00\x01 binary junk\n" + b"99999999 not a count\n" + b"<13>1 broken\n")
            # A Huawei VRP line over UDP (RFC 3164, the device's local time in Beijing).
            await _vrp_link(udp_port, "DOWN")
            # A ZTE ZXR10 alarm over TCP (RFC 5424 without a host: the sender's address stands in).
            await _run(
                LOGGER,
                "--rfc5424=nohost",
                "-T",
                "-n",
                "127.0.0.1",
                "-P",
                str(tcp_port),
                "-p",
                "local7.err",
                "An alarm 20008 ID 5314 level 3 occurred at 10:00:00 12/07/2026 "
                "sent by ZXR10 MCP %PORT% Interface gei-0/1/0/1 is down",
            )
            # An octet-counted one (RFC 6587), a notice no rule knows: refused as a log line.
            await _run(LOGGER, "--octet-count", "-T", "-n", "127.0.0.1", "-P", str(tcp_port), "just a notice")
            # IF-MIB linkDown from net-snmp, v2c.
            await _run(
                SNMPTRAP,
                "-m",
                "",
                "-v",
                "2c",
                "-c",
                "public",
                f"127.0.0.1:{trap_port}",
                "",
                "1.3.6.1.6.3.1.1.5.3",
                "1.3.6.1.2.1.2.2.1.1.3",
                "i",
                "3",
                "1.3.6.1.2.1.2.2.1.2.3",
                "s",
                "GigabitEthernet0/0/3",
                env=snmp_env,
            )
            # IF-MIB linkDown as an SNMPv3 authPriv trap (SHA, AES) from a configured user.
            await _run(SNMPTRAP, "-m", "", "-v", "3", "-e", "0x8000000001020304", "-u", "noc",
                       "-l", "authPriv", "-a", "SHA", "-A", "authpass123", "-x", "AES", "-X", "privpass123",
                       f"127.0.0.1:{trap_port}", "", "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.5", "i", "5",
                       "1.3.6.1.2.1.2.2.1.2.5", "s", "GigabitEthernet0/0/5", env=snmp_env)

            async def four_alarms():
                body = (await http.get("/tmf-api/alarm/v4/alarm")).json()
                return body if len(body) >= 4 else None

            listed = {a["alarmedObject"]["id"]: a for a in await _until(four_alarms) or []}
            assert set(listed) == {
                f"{HOST}:GigabitEthernet0/0/1",
                "127.0.0.1:GigabitEthernet0/0/3",
                "127.0.0.1:gei-0/1/0/1",
                "127.0.0.1:GigabitEthernet0/0/5",    # the v3 trap's: not in the inventory, no fault
            }
            assert {a["probableCause"] for a in listed.values()} == {"LINK_DOWN", "PORT_DOWN"}
            assert all(a["state"] == "raised" and a["perceivedSeverity"] == "major" for a in listed.values())
            assert listed["127.0.0.1:GigabitEthernet0/0/3"]["sourceSystemId"] == "snmp"

            async def three_faults():
                faults = (await http.get("/faults", params={"open": "true"})).json()
                return faults if len(faults) >= 3 else None

            faults = await _until(three_faults) or []
            assert sorted(f["circuit_id"] for f in faults) == ["GZ-INT-9001", "GZ-INT-9002", "GZ-INT-9003"]
            # An NMS export through `faultline import` (the sample CSV; then a file with a bad row).
            cli = [sys.executable, "-m", "services.cli", "import", "--url", f"http://127.0.0.1:{http_port}",
                   "--token", token]
            done = await asyncio.create_subprocess_exec(
                *cli, str(ROOT / "samples" / "exports" / "u2000-gz-current-alarms.csv"), cwd=ROOT,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out, err = await done.communicate()
            assert done.returncode == 0 and b"4 rows, 4 taken, 0 refused" in out, (out, err)
            bad = tmp_path / "bad.csv"
            bad.write_text("Log Serial Number,Severity,Name,Alarm Source,Location Info,Occurrence Time\n"
                           "9001,Critical,R_LOS,GZ-OTN-B,2-1-4,2026-11-25 10:00:00\n"
                           "9002,Critical,R_LOS,GZ-OTN-B,2-1-5,the day before\n")
            done = await asyncio.create_subprocess_exec(*cli, str(bad), cwd=ROOT, stdout=subprocess.PIPE,
                                                        stderr=subprocess.PIPE)
            out, err = await done.communicate()
            assert done.returncode == 3 and b"2 rows, 1 taken, 1 refused" in out, (out, err)
            assert f"{bad}: line 3: rows[1].payload.row['Occurrence Time']: 'the day before' is not a time" \
                in err.decode()

            async def imported():
                body = (await http.get(TMF642, params={"sourceSystemId": "u2000-gz"})).json()
                return body if len(body) >= 4 else None
            assert sorted(a["id"] for a in await _until(imported) or []) == [
                "u2000-gz:884213", "u2000-gz:884220", "u2000-gz:884231", "u2000-gz:884240"]

            async def on_the_otn():
                faults = (await http.get("/faults", params={"open": "true"})).json()
                return faults if "GZ-INT-0003" in {f["circuit_id"] for f in faults} else None
            assert await _until(on_the_otn)
            # The listeners still serve after all that: one more line gets through.
            await _vrp_link(udp_port, "UP")

            async def cleared():
                params = {"state": "cleared", "sourceSystemId": "syslog"}
                body = (await http.get(TMF642, params=params)).json()
                return body or None

            assert [a["alarmedObject"]["id"] for a in await _until(cleared) or []] == [
                f"{HOST}:GigabitEthernet0/0/1"
            ]

            def letters():
                with sqlite3.connect(db) as conn:
                    return conn.execute("select source_key, reason, body from rejected").fetchall()

            async def all_letters():
                got = letters()
                return got if len(got) >= 300 + 300 + 3 + 1 + 1 else None

            rows = await _until(all_letters) or letters()
    finally:
        proc.terminate()
        _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    # Its log: JSON lines (the default format), the refused feeds named by input id, no token.
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    assert lines and all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    leaked = [line for line in err.decode().splitlines() if token in line]
    assert not leaked, leaked
    by_topic: dict[str, list] = {}
    for key, reason, body in rows:
        by_topic.setdefault(key.split(":")[0], []).append((reason, json.loads(body)))
    syslog, snmp = by_topic["faultline.alarms.raw.syslog"], by_topic["faultline.alarms.raw.snmp"]
    # the import's refused row, dead-lettered by the api
    assert [r for r, _k in by_topic["faultline.deadletter"]] == [
        "rows[1].payload.row['Occurrence Time']: 'the day before' is not a time (ISO 8601, or "
        "YYYY-MM-DD hh:mm:ss in Asia/Shanghai)"]
    assert len(snmp) == 300 and len(syslog) == 300 + 3 + 1
    reason, kept = snmp[0]
    assert reason.startswith("snmp message: not a BER-encoded SNMP message")
    assert base64.b64decode(kept["base64"]) == b"\x30\x82\xff\xff garbage" and kept["sender"] == "127.0.0.1"
    reasons = [r for r, _ in syslog]
    assert sum("PRI <999> is out of range" in r for r in reasons) == 300
    assert any("NUL" in r for r in reasons)
    assert any("RFC 5424 header ends at TIMESTAMP" in r for r in reasons)
    assert any("informational" in r or "notice" in r for r in reasons)
    flood = next(k for r, k in syslog if "PRI <999>" in r)
    assert base64.b64decode(flood["base64"]).startswith(b"<999>flood ")  # the bytes whole, \xff too
