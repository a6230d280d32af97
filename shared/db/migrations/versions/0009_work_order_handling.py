"""Work-order handling through the TMF621 API, and alarm acknowledgement through TMF642

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Issue 10: the notes on a work order (TMF621 note[], appended, never rewritten), its status
changes made by operators (statusChange[], with who and why), and an alarm's acknowledgement
and clearing by an operator (TMF642 ackState, ackUserId, clearUserId, comment[]).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('work_order_notes',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('work_order_id', sa.String(length=64), nullable=False),
        sa.Column('author', sa.String(length=255), nullable=False),
        sa.Column('date', sa.String(length=40), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_work_order_notes'),
    )
    op.create_index('ix_work_order_notes_work_order_id', 'work_order_notes', ['work_order_id'])
    op.create_table('work_order_changes',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('work_order_id', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('at', sa.String(length=40), nullable=False),
        sa.Column('by', sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_work_order_changes'),
    )
    op.create_index('ix_work_order_changes_work_order_id', 'work_order_changes', ['work_order_id'])
    with op.batch_alter_table('alarms') as batch:
        batch.add_column(sa.Column('ack_state', sa.String(length=16), server_default='unacknowledged',
                                   nullable=False))
        batch.add_column(sa.Column('ack_user_id', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('ack_at', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('clear_user_id', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('comments', sa.Text(), server_default='[]', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('alarms') as batch:
        for name in ('comments', 'clear_user_id', 'ack_at', 'ack_user_id', 'ack_state'):
            batch.drop_column(name)
    op.drop_index('ix_work_order_changes_work_order_id', 'work_order_changes')
    op.drop_table('work_order_changes')
    op.drop_index('ix_work_order_notes_work_order_id', 'work_order_notes')
    op.drop_table('work_order_notes')
