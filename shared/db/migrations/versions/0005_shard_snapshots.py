"""Shard snapshots and the input log's archive

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

A city shard was rebuilt by re-running every entry of its input log, so recovery time and
the log grew without bound. `shard_snapshots` keeps a shard's state as of a log seq
(services/drivers/snapshots.py), with a fingerprint of the inventory and rulebook it was
made under and the shard's count of audit rows then: a rebuild loads the latest that
matches and re-runs only the entries after it. Retention then deletes the entries (and
published outbox rows) further behind the latest snapshot than a window, or, with
FAULTLINE_LOG_RETENTION=archive, moves the entries to `input_log_archive`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('shard_snapshots',
        sa.Column('stage', sa.String(length=32), nullable=False),
        sa.Column('shard', sa.String(length=32), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('taken_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('records', sa.BigInteger(), nullable=False),
        sa.Column('state', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('stage', 'shard', 'seq', name='pk_shard_snapshots'),
    )
    op.create_table('input_log_archive',
        sa.Column('id', BIGID, autoincrement=False, nullable=False),
        sa.Column('stage', sa.String(length=32), nullable=False),
        sa.Column('shard', sa.String(length=32), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('clock', sa.Float(), nullable=False),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('source_key', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_input_log_archive'),
    )
    op.create_index('ix_input_log_archive_stage_shard_seq', 'input_log_archive', ['stage', 'shard', 'seq'])


def downgrade() -> None:
    op.drop_index('ix_input_log_archive_stage_shard_seq', 'input_log_archive')
    op.drop_table('input_log_archive')
    op.drop_table('shard_snapshots')
