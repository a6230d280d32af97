"""Initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25

Every table of shared.db.models as it was first written: the input log, outbox and
shard ownership of the production path, and the read model.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT on PostgreSQL; INTEGER on SQLite, where only an INTEGER PRIMARY KEY autoincrements.
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('alarms',
        sa.Column('source', sa.String(length=255), nullable=False),
        sa.Column('alarm_id', sa.String(length=255), nullable=False),
        sa.Column('resource_id', sa.String(length=255), nullable=True),
        sa.Column('probable_cause', sa.String(length=64), nullable=True),
        sa.Column('severity', sa.String(length=16), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=True),
        sa.Column('event_time', sa.String(length=40), nullable=True),
        sa.Column('text', sa.Text(), nullable=True),
        sa.Column('first_seen_at', sa.String(length=40), nullable=True),
        sa.Column('last_seen_at', sa.String(length=40), nullable=True),
        sa.Column('count', sa.Integer(), server_default='0', nullable=False),
        sa.Column('unmapped', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint('source', 'alarm_id', name='pk_alarms'),
    )
    op.create_index('ix_alarms_resource_id', 'alarms', ['resource_id'])
    op.create_table('audit',
        sa.Column('id', BIGID, autoincrement=True, nullable=False),
        sa.Column('at', sa.String(length=40), nullable=False),
        sa.Column('stage', sa.String(length=32), nullable=False),
        sa.Column('shard', sa.String(length=32), nullable=False),
        sa.Column('type', sa.String(length=32), nullable=False),
        sa.Column('fault_id', sa.String(length=64), nullable=True),
        sa.Column('work_order_id', sa.String(length=64), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_audit'),
        sa.UniqueConstraint('digest', name='uq_audit_digest'),
    )
    op.create_index('ix_audit_fault_id', 'audit', ['fault_id'])
    op.create_index('ix_audit_work_order_id', 'audit', ['work_order_id'])
    op.create_table('complaints',
        sa.Column('complaint_id', sa.String(length=64), nullable=False),
        sa.Column('customer_id', sa.String(length=64), nullable=True),
        sa.Column('city', sa.String(length=32), nullable=True),
        sa.Column('service_type', sa.String(length=32), nullable=True),
        sa.Column('channel', sa.String(length=32), nullable=True),
        sa.Column('scope', sa.String(length=16), nullable=True),
        sa.Column('text', sa.Text(), nullable=True),
        sa.Column('received_at', sa.String(length=40), nullable=True),
        sa.Column('fault_id', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('complaint_id', name='pk_complaints'),
    )
    op.create_index('ix_complaints_fault_id', 'complaints', ['fault_id'])
    op.create_table('escalations',
        sa.Column('fault_id', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.String(length=16), nullable=False),
        sa.Column('to_queue', sa.String(length=128), nullable=True),
        sa.Column('at', sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint('fault_id', 'reason', name='pk_escalations'),
    )
    op.create_table('faults',
        sa.Column('fault_id', sa.String(length=64), nullable=False),
        sa.Column('incident_id', sa.String(length=64), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=True),
        sa.Column('circuit_id', sa.String(length=255), nullable=True),
        sa.Column('customer_id', sa.String(length=64), nullable=True),
        sa.Column('city', sa.String(length=32), nullable=True),
        sa.Column('service_type', sa.String(length=32), nullable=True),
        sa.Column('important', sa.Boolean(), nullable=True),
        sa.Column('cause_side', sa.String(length=16), nullable=True),
        sa.Column('root_resource', sa.String(length=255), nullable=True),
        sa.Column('layer', sa.String(length=16), nullable=True),
        sa.Column('probable_cause', sa.String(length=64), nullable=True),
        sa.Column('opened_at', sa.String(length=40), nullable=True),
        sa.Column('severity', sa.String(length=16), nullable=True),
        sa.Column('serious_at', sa.String(length=40), nullable=True),
        sa.Column('rule', sa.String(length=16), nullable=True),
        sa.Column('trigger', sa.String(length=16), nullable=True),
        sa.Column('ended_at', sa.String(length=40), nullable=True),
        sa.Column('duration_s', sa.Integer(), nullable=True),
        sa.Column('attribution', sa.String(length=16), nullable=True),
        sa.Column('updated_at', sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint('fault_id', name='pk_faults'),
    )
    op.create_index('ix_faults_city_severity', 'faults', ['city', 'severity'])
    op.create_index('ix_faults_customer_id_service_type', 'faults', ['customer_id', 'service_type'])
    op.create_index('ix_faults_incident_id', 'faults', ['incident_id'])
    op.create_table('incidents',
        sa.Column('incident_id', sa.String(length=64), nullable=False),
        sa.Column('root_resource', sa.String(length=255), nullable=True),
        sa.Column('first_opened_at', sa.String(length=40), nullable=True),
        sa.Column('fault_count', sa.Integer(), server_default='0', nullable=False),
        sa.PrimaryKeyConstraint('incident_id', name='pk_incidents'),
    )
    op.create_table('input_log',
        sa.Column('id', BIGID, autoincrement=True, nullable=False),
        sa.Column('stage', sa.String(length=32), nullable=False),
        sa.Column('shard', sa.String(length=32), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('clock', sa.Float(), nullable=False),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('source_key', sa.String(length=255), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_input_log'),
        sa.UniqueConstraint('stage', 'shard', 'seq', name='uq_input_log_stage_shard_seq'),
        sa.UniqueConstraint('stage', 'shard', 'source_key', name='uq_input_log_stage_shard_source_key'),
    )
    op.create_index('ix_input_log_stage_shard', 'input_log', ['stage', 'shard'])
    op.create_table('notifications',
        sa.Column('id', BIGID, autoincrement=True, nullable=False),
        sa.Column('fault_id', sa.String(length=64), nullable=False),
        sa.Column('type', sa.String(length=32), nullable=False),
        sa.Column('stage_or_rule', sa.String(length=32), server_default='', nullable=False),
        sa.Column('queue_or_target', sa.String(length=128), server_default='', nullable=False),
        sa.Column('recipients', sa.Text(), server_default='[]', nullable=False),
        sa.Column('text', sa.Text(), nullable=True),
        sa.Column('deadline', sa.String(length=40), nullable=True),
        sa.Column('at', sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_notifications'),
        sa.UniqueConstraint('fault_id', 'type', 'stage_or_rule', 'queue_or_target', 'at',
                            name='uq_notifications_key'),
    )
    op.create_table('outbox',
        sa.Column('id', BIGID, autoincrement=True, nullable=False),
        sa.Column('stage', sa.String(length=32), nullable=False),
        sa.Column('shard', sa.String(length=32), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('topic', sa.String(length=255), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=True),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('published', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_outbox'),
        sa.UniqueConstraint('stage', 'shard', 'seq', 'topic', name='uq_outbox_stage_shard_seq_topic'),
    )
    op.create_index('ix_outbox_published_id', 'outbox', ['published', 'id'])
    op.create_table('rejected',
        sa.Column('id', BIGID, autoincrement=True, nullable=False),
        sa.Column('at', sa.String(length=40), nullable=False),
        sa.Column('stage', sa.String(length=32), nullable=False),
        sa.Column('source_key', sa.String(length=255), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('digest', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_rejected'),
        sa.UniqueConstraint('digest', name='uq_rejected_digest'),
    )
    op.create_table('shard_owner',
        sa.Column('stage', sa.String(length=32), nullable=False),
        sa.Column('shard', sa.String(length=32), nullable=False),
        sa.Column('owner', sa.String(length=255), nullable=False),
        sa.Column('epoch', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint('stage', 'shard', name='pk_shard_owner'),
    )
    op.create_table('timers',
        sa.Column('stage', sa.String(length=32), nullable=False),
        sa.Column('shard', sa.String(length=32), nullable=False),
        sa.Column('fault_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('due', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('stage', 'shard', 'fault_id', 'kind', 'due', name='pk_timers'),
    )
    op.create_index('ix_timers_stage_shard_due', 'timers', ['stage', 'shard', 'due'])
    op.create_table('work_orders',
        sa.Column('work_order_id', sa.String(length=64), nullable=False),
        sa.Column('queue', sa.String(length=128), nullable=True),
        sa.Column('fault_ids', sa.Text(), server_default='[]', nullable=False),
        sa.Column('cc', sa.Text(), server_default='[]', nullable=False),
        sa.Column('priority', sa.String(length=16), nullable=True),
        sa.Column('title', sa.Text(), nullable=True),
        sa.Column('rule', sa.String(length=16), nullable=True),
        sa.Column('status', sa.String(length=16), server_default='acknowledged', nullable=False),
        sa.Column('contact_by', sa.String(length=40), nullable=True),
        sa.Column('arrive_by', sa.String(length=40), nullable=True),
        sa.Column('created_at', sa.String(length=40), nullable=True),
        sa.Column('updated_at', sa.String(length=40), nullable=True),
        sa.Column('resolved_at', sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint('work_order_id', name='pk_work_orders'),
    )
    op.create_index('ix_work_orders_queue_status', 'work_orders', ['queue', 'status'])


def downgrade() -> None:
    op.drop_index('ix_work_orders_queue_status', table_name='work_orders')
    op.drop_table('work_orders')
    op.drop_index('ix_timers_stage_shard_due', table_name='timers')
    op.drop_table('timers')
    op.drop_table('shard_owner')
    op.drop_table('rejected')
    op.drop_index('ix_outbox_published_id', table_name='outbox')
    op.drop_table('outbox')
    op.drop_table('notifications')
    op.drop_index('ix_input_log_stage_shard', table_name='input_log')
    op.drop_table('input_log')
    op.drop_table('incidents')
    op.drop_index('ix_faults_incident_id', table_name='faults')
    op.drop_index('ix_faults_customer_id_service_type', table_name='faults')
    op.drop_index('ix_faults_city_severity', table_name='faults')
    op.drop_table('faults')
    op.drop_table('escalations')
    op.drop_index('ix_complaints_fault_id', table_name='complaints')
    op.drop_table('complaints')
    op.drop_index('ix_audit_work_order_id', table_name='audit')
    op.drop_index('ix_audit_fault_id', table_name='audit')
    op.drop_table('audit')
    op.drop_index('ix_alarms_resource_id', table_name='alarms')
    op.drop_table('alarms')
