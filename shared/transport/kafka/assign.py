"""A partition assignor that gives every partition to one member of the group.

The correlate stage's router must see faultline.alarms and faultline.actions as one stream
in arrival order (services/drivers/city_router.py); two routers splitting the partitions could each
release a city's inputs in its own order. So the router group has one active member —
the first by member id — and the others stand by: when it dies, the group rebalances and
the next one takes every partition over from the last committed offsets. The router is
stateless and cheap; the heavy, stateful work (the city shards) scales out separately.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata


class SingleActiveAssignor(AbstractPartitionAssignor):
    name = "faultline-single-active"
    version = 0

    @classmethod
    def assign(cls, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata],
               ) -> dict[str, ConsumerProtocolMemberAssignment]:
        active = min(members)
        topics = sorted({t for m in members.values() for t in m.subscription})
        owned = [(t, sorted(cluster.partitions_for_topic(t) or ())) for t in topics]
        return {member: ConsumerProtocolMemberAssignment(cls.version, owned if member == active else [], b"")
                for member in members}

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(cls.version, list(topics), b"")

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        pass
