"""What retention let go of a shard's log, for the outcome of an input

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08

The outcome of an input (GET /inputs/{id}) was read from the input log's entries, so once
retention (0005) had deleted an input's entry it was answered `pending` for good.
`input_log_horizon` keeps, per shard and topic partition (or city, for dispatch's notices),
the span of source positions retention removed: an input within it was handled. Its size
follows the shards and partitions, not history. `pruned_notices` keeps the notices of deleted
correlate entries that dispatch had not yet handled (until its own retention lets them go)
or had refused. `input_log_archive_sent` keeps what an archived entry's outbox rows said
(its records, its notices' ids), since those rows are dropped with it; the archive is looked
up by source key.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('input_log_horizon',
        sa.Column('stage', sa.String(length=32), nullable=False),
        sa.Column('shard', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('origin', sa.String(length=255), nullable=False),
        sa.Column('partition', sa.Integer(), nullable=False),
        sa.Column('low', sa.BigInteger(), nullable=False),
        sa.Column('low_ts', sa.BigInteger(), nullable=False),
        sa.Column('high', sa.BigInteger(), nullable=False),
        sa.Column('high_ts', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint('stage', 'shard', 'kind', 'origin', 'partition', name='pk_input_log_horizon'),
    )
    op.create_table('pruned_notices',
        sa.Column('source_key', sa.String(length=255), nullable=False),
        sa.Column('notice_id', sa.String(length=255), nullable=False),
        sa.Column('shard', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('source_key', 'notice_id', name='pk_pruned_notices'),
    )
    op.create_index('ix_pruned_notices_shard', 'pruned_notices', ['shard'])
    op.create_table('input_log_archive_sent',
        sa.Column('stage', sa.String(length=32), nullable=False),
        sa.Column('shard', sa.String(length=32), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('records', sa.Integer(), nullable=False),
        sa.Column('notices', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('stage', 'shard', 'seq', name='pk_input_log_archive_sent'),
    )
    op.create_index('ix_input_log_archive_stage_source_key', 'input_log_archive', ['stage', 'source_key'])


def downgrade() -> None:
    op.drop_index('ix_input_log_archive_stage_source_key', 'input_log_archive')
    op.drop_table('input_log_archive_sent')
    op.drop_index('ix_pruned_notices_shard', 'pruned_notices')
    op.drop_table('pruned_notices')
    op.drop_table('input_log_horizon')
