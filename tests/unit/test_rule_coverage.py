"""Every rule id of RULES.md has at least one test named after it."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import rule_coverage  # noqa: E402


@pytest.mark.skipif(not rule_coverage.RULES.exists(), reason="no ../shared/domain/RULES.md")
def test_every_rule_id_has_a_test_named_after_it():
    ids = rule_coverage.rule_ids(rule_coverage.RULES.read_text(encoding="utf-8"))
    assert len(ids) >= 78
    missing = [rid for rid, tests in rule_coverage.tests_by_rule(ids).items() if not tests]
    assert missing == []
