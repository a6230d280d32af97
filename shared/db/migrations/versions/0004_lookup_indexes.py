"""Indexes of two lookups the runtime makes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

`rejected.source_key`: the outcome of an input (GET /inputs/{id}, intake's `wait_s`) looks its
refusals up by the input's id, polled while it waits. `audit (stage, shard)`: a city shard
rebuilt from its log counts the records it stored. Without them each is a scan of a table
that grows with history.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_rejected_source_key', 'rejected', ['source_key'])
    op.create_index('ix_audit_stage_shard', 'audit', ['stage', 'shard'])


def downgrade() -> None:
    op.drop_index('ix_audit_stage_shard', 'audit')
    op.drop_index('ix_rejected_source_key', 'rejected')
