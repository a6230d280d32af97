"""A fault's complaints and whether its customer reported it

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

No output record says which complaints a fault holds (SV-5, SV-6, SF-6b) or that its customer
reported it: the correlate shard writes them beside the records it projects, so the one
HTTP app answers the same fault body in both modes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('faults') as batch:
        batch.add_column(sa.Column('complaints', sa.Text(), server_default='[]', nullable=False))
        batch.add_column(sa.Column('customer_reported', sa.Boolean(), server_default=sa.false(),
                                   nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('faults') as batch:
        batch.drop_column('customer_reported')
        batch.drop_column('complaints')
