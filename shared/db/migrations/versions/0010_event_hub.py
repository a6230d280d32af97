"""The TMF event hub: listeners, events, deliveries and the pump's cursor

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

TMF621 notifications (TMF.md C9, C10, T5; services/hub.py): the listeners registered by
POST /hub, the events made from the decision records kept in `audit` (one envelope each,
its eventId stable across retries), one delivery per listener and event until the listener
answered 2xx (at-least-once, with backoff), and the pump's position in `audit`. The cursor
starts at the end of `audit` as it is now: the hub tells what is decided after it exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('hub_listeners',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('callback', sa.Text(), nullable=False),
        sa.Column('query', sa.Text(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('created_by', sa.BigInteger(), nullable=True),
        sa.Column('failing_since', sa.Float(), nullable=True),
        sa.Column('disabled_at', sa.Float(), nullable=True),
        sa.Column('disabled_reason', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_hub_listeners'),
    )
    op.create_table('hub_events',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('event_id', sa.String(length=64), nullable=False),
        sa.Column('event_type', sa.String(length=64), nullable=False),
        sa.Column('event_time', sa.String(length=40), nullable=False),
        sa.Column('queue', sa.String(length=128), nullable=True),
        sa.Column('city', sa.String(length=32), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_hub_events'),
        sa.UniqueConstraint('event_id', name='uq_hub_events_event_id'),
    )
    op.create_index('ix_hub_events_created_at', 'hub_events', ['created_at'])
    op.create_table('hub_deliveries',
        sa.Column('listener_id', sa.BigInteger(), nullable=False),
        sa.Column('event_seq', sa.BigInteger(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_at', sa.Float(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('delivered_at', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('listener_id', 'event_seq', name='pk_hub_deliveries'),
    )
    op.create_index('ix_hub_deliveries_delivered_at_next_at', 'hub_deliveries', ['delivered_at', 'next_at'])
    op.create_index('ix_hub_deliveries_event_seq', 'hub_deliveries', ['event_seq'])
    op.create_table('hub_cursor',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('last_id', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name', name='pk_hub_cursor'),
    )
    # The pump starts after what `audit` holds now (nothing on a new database).
    op.execute("INSERT INTO hub_cursor (name, last_id) SELECT 'decisions', COALESCE(MAX(id), 0) FROM audit")


def downgrade() -> None:
    op.drop_table('hub_cursor')
    op.drop_index('ix_hub_deliveries_event_seq', 'hub_deliveries')
    op.drop_index('ix_hub_deliveries_delivered_at_next_at', 'hub_deliveries')
    op.drop_table('hub_deliveries')
    op.drop_index('ix_hub_events_created_at', 'hub_events')
    op.drop_table('hub_events')
    op.drop_table('hub_listeners')
