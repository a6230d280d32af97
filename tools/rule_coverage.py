"""List every rule id of RULES.md with the tests named after it.

    python tools/rule_coverage.py [RULES.md]      # default: ../shared/domain/RULES.md

Exit status 1 when a rule id has no test; tests/unit/test_rule_coverage.py runs it.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT.parent / "shared" / "domain" / "RULES.md"
RULE_ID = re.compile(r"\b(T-[1-7]|AL-[1-8]|SF-(?:1a|1b|[2-5]|6a|6b)|SV-[1-9]|RT-(?:1[0-7]|[1-9])"
                     r"|CP-[1-3]|ES-[1-7]|TM-(?:10|[1-9])|NT-[1-5]|CL-[1-4])\b")


def rule_ids(text: str) -> list[str]:
    def order(rid: str) -> tuple[str, int, str]:
        prefix, _, rest = rid.partition("-")
        num = re.match(r"\d+", rest)
        return prefix, int(num.group()) if num else 0, rest
    return sorted(set(RULE_ID.findall(text)), key=order)


def tests_by_rule(ids: list[str]) -> dict[str, list[str]]:
    names = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        names += [f"{path.relative_to(ROOT)}::{m}" for m in re.findall(r"def (test_\w+)", path.read_text())]
    found = {}
    for rid in ids:
        token = "_" + rid.replace("-", "_") + "_"
        found[rid] = [n for n in names if token in n.split("::")[1] + "_"]
    return found


def main(argv: list[str]) -> int:
    rules = Path(argv[1]) if len(argv) > 1 else RULES
    found = tests_by_rule(rule_ids(rules.read_text(encoding="utf-8")))
    for rid, tests in found.items():
        print(f"{rid:<6} {len(tests):>3}  {tests[0] if tests else 'NO TEST'}")
    missing = [rid for rid, tests in found.items() if not tests]
    if missing:
        print("rule ids without a test: " + ", ".join(missing), file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
