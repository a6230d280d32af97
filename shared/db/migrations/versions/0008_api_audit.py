"""The audit trail of changes made through the API

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Issue 10 (security, 留痕): one row per accepted change — an intake call, a token made or
revoked — with who (the token's id, name, role, city), what, when, and its input ids.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_audit',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                  nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sa.Column('token_id', sa.BigInteger(), nullable=True),
        sa.Column('actor', sa.String(length=255), nullable=False),
        sa.Column('role', sa.String(length=32), nullable=False),
        sa.Column('city', sa.String(length=32), nullable=True),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('inputs', sa.Integer(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_api_audit'),
    )


def downgrade() -> None:
    op.drop_table('api_audit')
