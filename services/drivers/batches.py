"""Batch messages on the pipeline's own topics (faultline.correlator.inputs, faultline.faults).

CONTRACT §4 fixes one alarm, action or record per message on the outside topics; between
its own stages faultline may carry many inputs in one message, and in a storm it pays:
one broker record, one fetch and one commit for hundreds of inputs instead of one each.
A batch message is `{"batch": [<input>, <input>, …]}`, each input exactly what a message
of its own would carry (with its own source key, so a redelivered batch — or the same
inputs batched otherwise after a crash — is still skipped input by input). Consumers take
single-input messages too. Packing joins the encoded inputs' bytes: nothing is encoded
twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.drivers.dead_letters import MAX_VALUE
from shared.topics import CORRELATOR_INPUTS, FAULTS

BATCHED_TOPICS = frozenset({CORRELATOR_INPUTS, FAULTS})

_HEAD, _SEP, _TAIL = b'{"batch":[', b",", b"]}"
_FRAME = len(_HEAD) + len(_TAIL)


def pack(values: Sequence[bytes], limit: int = MAX_VALUE) -> list[bytes]:
    """JSON object values → batch messages of at most `limit` bytes, in order. A value too
    large to share a message goes alone, as it is (a consumer takes both forms)."""
    out: list[bytes] = []
    run: list[bytes] = []
    size = _FRAME
    for value in values:
        if _FRAME + len(value) > limit:
            if run:
                out.append(_HEAD + _SEP.join(run) + _TAIL)
                run, size = [], _FRAME
            out.append(value)
            continue
        if run and size + len(_SEP) + len(value) > limit:
            out.append(_HEAD + _SEP.join(run) + _TAIL)
            run, size = [], _FRAME
        size += len(value) + (len(_SEP) if run else 0)
        run.append(value)
    if run:
        out.append(_HEAD + _SEP.join(run) + (_TAIL))
    return out


def pack_records(records: Iterable[tuple[str, bytes, str | None]], limit: int = MAX_VALUE
                 ) -> list[tuple[str, bytes, str | None]]:
    """(topic, value, key) to send, the values of a batched topic packed per (topic, key),
    each key's values in their order (one city's inputs stay in order; cities are
    independent). Other topics' records pass as they are, in their order."""
    groups: dict[tuple[str, str | None], list[bytes]] = {}
    out: list[tuple[str, bytes, str | None] | tuple[str, str | None]] = []
    for topic, value, key in records:
        if topic not in BATCHED_TOPICS:
            out.append((topic, value, key))
            continue
        group = groups.get((topic, key))
        if group is None:
            group = groups[(topic, key)] = []
            out.append((topic, key))                # where the group goes
        group.append(value)
    packed: list[tuple[str, bytes, str | None]] = []
    for item in out:
        if len(item) == 3:
            packed.append(item)                     # type: ignore[arg-type]
        else:
            topic, key = item
            packed.extend((topic, v, key) for v in pack(groups[(topic, key)], limit))
    return packed


def items_of(body: object) -> list | None:
    """The inputs of a batch message's decoded body, or None when it is not one (a single
    input, or something the stage will refuse)."""
    if type(body) is dict and len(body) == 1 and type(body.get("batch")) is list:
        return body["batch"]
    return None
