"""Inventories loaded through the API

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Issue 10 (inventory bulk load): every load that passed every check is kept as a version (the
canonical document, compressed); the current inventory is the highest id.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | Sequence[str] | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('inventories',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('body', sa.LargeBinary(), nullable=False),
        sa.Column('customers', sa.Integer(), nullable=False),
        sa.Column('resources', sa.Integer(), nullable=False),
        sa.Column('circuits', sa.Integer(), nullable=False),
        sa.Column('loaded_at', sa.Float(), nullable=False),
        sa.Column('loaded_by', sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_inventories'),
    )


def downgrade() -> None:
    op.drop_table('inventories')
