"""Comparing decisions of two runs "ids aside" (issue 3): each id is replaced by what it names.

The comparison lives with the tool that lets anyone make it against a running pipeline
(tools/kafka_events.py); the tests use the same one."""

from __future__ import annotations

from tools.kafka_events import canonical

__all__ = ["canonical"]
