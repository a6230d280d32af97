"""The local transport's topics and committed offsets

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06

`faultline run` runs the production runtime in one process over an in-process transport
kept in its own database (shared/transport/local.py): what Kafka keeps in production — the
messages of each topic partition and each consumer group's committed offsets — lives in
these two tables. The production processes leave them empty.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('transport_messages',
        sa.Column('id', BIGID, autoincrement=True, nullable=False),
        sa.Column('topic', sa.String(length=255), nullable=False),
        sa.Column('partition', sa.Integer(), nullable=False),
        sa.Column('offset', sa.BigInteger(), nullable=False),
        sa.Column('key', sa.Text(), nullable=True),
        sa.Column('value', sa.LargeBinary(), nullable=False),
        sa.Column('timestamp_ms', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_transport_messages'),
        sa.UniqueConstraint('topic', 'partition', 'offset',
                            name='uq_transport_messages_topic_partition_offset'),
    )
    op.create_table('transport_offsets',
        sa.Column('group_id', sa.String(length=255), nullable=False),
        sa.Column('topic', sa.String(length=255), nullable=False),
        sa.Column('partition', sa.Integer(), nullable=False),
        sa.Column('next_offset', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('group_id', 'topic', 'partition', name='pk_transport_offsets'),
    )


def downgrade() -> None:
    op.drop_table('transport_offsets')
    op.drop_table('transport_messages')
