#!/usr/bin/env python3
"""Developer entry point; needs nothing but Python 3.11+ (standard library only).

    python3 dev.py test [PYTEST ARGS...]   create .venv if needed, install, run pytest (and, as
                                           root on Debian, apt-get the real senders the feed
                                           tests drive: snmp, bsdutils, prometheus,
                                           chromium)
    python3 dev.py demo                    install, then `faultline run --demo`
    python3 dev.py replay ARGS...          install, then `faultline replay ARGS...`

The project is installed editable with its `test` extra. The install is skipped when
pyproject.toml has not changed since the last one (a stamp file inside .venv holds the
sha256 of the pyproject.toml it installed).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".faultline-install.sha256"
PYPROJECT = ROOT / "pyproject.toml"
MIN_PYTHON = (3, 11)


def _bin(name: str) -> Path:
    if os.name == "nt":
        suffix = ".exe" if not name.endswith(".exe") else ""
        return VENV / "Scripts" / f"{name}{suffix}"
    return VENV / "bin" / name


def _say(msg: str) -> None:
    print(f"dev.py: {msg}", file=sys.stderr, flush=True)


def ensure_venv() -> Path:
    python = _bin("python")
    if not python.exists():
        _say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    return python


def ensure_installed() -> Path:
    python = ensure_venv()
    digest = hashlib.sha256(PYPROJECT.read_bytes()).hexdigest()
    try:
        if STAMP.read_text(encoding="ascii").strip() == digest:
            return python
    except OSError:
        pass
    _say("installing the project (pip install -e .[test])")
    cmd = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "-e", f"{ROOT}[test]"]
    rc = subprocess.call(cmd, cwd=ROOT)
    if rc != 0:
        _say(f"pip install failed (exit {rc})")
        sys.exit(rc)
    STAMP.write_text(digest + "\n", encoding="ascii")
    return python


# The real senders the feed tests use, from Debian: command → package.
DEBIAN_TOOLS = {"snmptrap": "snmp", "logger": "bsdutils", "promtool": "prometheus",
                "prometheus": "prometheus", "chromium": "chromium"}


def ensure_tools() -> None:
    """Install the Debian tools the tests drive, where missing and this is root on Debian (as
    CI is); otherwise the tests that need one skip, printing why."""
    import shutil

    missing = sorted({pkg for tool, pkg in DEBIAN_TOOLS.items() if shutil.which(tool) is None})
    if not missing:
        return
    if os.name == "nt" or not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        _say(f"not installing {', '.join(missing)} (needs root and apt-get): the tests that use them skip")
        return
    _say(f"installing Debian packages: {', '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if subprocess.call(cmd, env=env, stdout=subprocess.DEVNULL) != 0:
        subprocess.call(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        if subprocess.call(cmd, env=env, stdout=subprocess.DEVNULL) != 0:
            _say(f"apt-get could not install {', '.join(missing)}: the tests that use them skip")


def cmd_test(args: list[str]) -> int:
    python = ensure_installed()
    ensure_tools()
    rc = subprocess.call([str(python), "-m", "pytest", "-q", *args], cwd=ROOT)
    if rc == 5:  # pytest: no tests collected
        _say("no tests were collected")
        return 1
    return rc


def _exec_faultline(args: list[str]) -> int:
    ensure_installed()
    exe = _bin("faultline")
    argv = [str(exe), *args]
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":
        return subprocess.call(argv, cwd=ROOT)
    os.chdir(ROOT)
    os.execv(argv[0], argv)
    return 0  # not reached


USAGE = __doc__ or ""


def main(argv: list[str]) -> int:
    if sys.version_info < MIN_PYTHON:
        _say(f"Python {'.'.join(map(str, MIN_PYTHON))}+ is required, this is {sys.version.split()[0]}")
        return 2
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(USAGE.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "test":
        return cmd_test(rest)
    if command == "demo":
        return _exec_faultline(["run", "--demo", *rest])
    if command == "replay":
        return _exec_faultline(["replay", *rest])
    _say(f"unknown command {command!r}")
    print(USAGE.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
