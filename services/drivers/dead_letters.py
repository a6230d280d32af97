"""Dead letters: one shape, one builder, one keeper, for every loop and both modes.

Every refused input is kept, never dropped: on faultline.deadletter as a letter

    {"reason": why, "stage": who refused it (api | router | ingest | correlate | dispatch),
     "source": the input's name (the message coordinates it came as, the router's source
               key, a notice id; null for an HTTP body refused before it was published),
     "topic", "partition", "offset": the message it came in (null for an HTTP body),
     "value": the input itself[, "truncated": the size of the whole]}

and in the `rejected` table: the city shards write theirs in the transaction that logs the
batch; services/runtime/dead_letter_keeper.py (a loop of `faultline correlate`, and of `faultline
run`) stores the others' (api, router, ingest) from the topic, once each.

aiokafka refuses a record over its max_request_size (1 MiB) with MessageSizeTooLargeError:
a dead letter that large could never be sent, and its message would be retried for ever (a
consumer) or answered 500 (the api). So a letter keeps the value as decoded JSON when that
encodes within MAX_KEPT bytes, else its text cut (halved until the letter fits: escapes such
as \\u0001 make the text up to six times longer once encoded), with `truncated` = the length
of the whole. An accepted value is held to MAX_VALUE (`fits`) before anything sends it.
"""

from __future__ import annotations

import orjson

from shared.model import MAX_NAME
from shared.transport.port import Msg

# aiokafka's max_request_size is 1 MiB, counted with the record's key and framing: a routed or
# published value beyond MAX_VALUE is refused before it is sent; a dead letter stays within
# MAX_LETTER, far from both.
MAX_VALUE = 900_000
MAX_KEPT = 256 * 1024
MAX_LETTER = MAX_KEPT + 8192
MAX_REASON = 4096
MAX_SOURCE = MAX_NAME          # rejected.source_key


def fits(value: bytes) -> bool:
    """Whether an encoded value may be sent (routed, published) as it is."""
    return len(value) <= MAX_VALUE


NOTHING = object()                # no value to keep (JSON null is a value, kept as null)


def dead_letter(reason: str, stage: str, value: object = NOTHING, *, source: str | None = None,
                msg: Msg | None = None, raw: bytes | str | None = None) -> bytes:
    """The encoded letter (the shape above); never raises, never over MAX_LETTER bytes.
    `value` is kept as JSON when given and small enough; otherwise the text of `raw` (the
    bytes as received, UTF-8 with replacement), or of `value` itself (a string as it is,
    anything else as its JSON), is kept cut to fit. `msg`: the message it came in."""
    where = ({"topic": None, "partition": None, "offset": None} if msg is None else
             {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset})
    if source is not None and len(source) > MAX_SOURCE:
        source = source[:MAX_SOURCE]
    letter: dict[str, object] = {"reason": _clean(reason[:MAX_REASON]), "stage": stage,
                                 "source": None if source is None else _clean(source), **where, "value": None}
    if value is not NOTHING:
        letter["value"] = value
        try:
            encoded = orjson.dumps(letter)
            if len(encoded) <= MAX_LETTER:
                return encoded
        except (TypeError, ValueError):       # nested beyond orjson's depth: keep the text
            pass
    text, size = _text(value, raw)
    cut = MAX_KEPT
    while True:
        letter["value"] = text[:cut]
        if len(text) > cut:
            letter["truncated"] = size
        encoded = orjson.dumps(letter)
        if len(encoded) <= MAX_LETTER:
            return encoded
        cut //= 4


def _text(value: object, raw: bytes | str | None) -> tuple[str, int]:
    """The text kept of a value too large (or too deep) to keep as JSON, and the size of the whole."""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace"), len(raw)
    if isinstance(raw, str):
        return _clean(raw), len(raw)
    if value is NOTHING:
        return "", 0
    if isinstance(value, str):
        return _clean(value), len(value)
    try:
        encoded = orjson.dumps(value)
    except (TypeError, ValueError):
        return "", 0
    return encoded.decode(), len(encoded)


def _clean(text: str) -> str:
    """The text without lone surrogates (orjson refuses to encode them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def kept_text(body: object, limit: int = 1 << 20) -> str:
    """A refused body as text that any database takes: JSON when it encodes, else its repr;
    NULs replaced (PostgreSQL text cannot hold them), cut at `limit` characters."""
    if isinstance(body, str):
        text = body
    else:
        try:
            text = orjson.dumps(body).decode()
        except (TypeError, ValueError):            # orjson: nesting beyond its limit, a huge int
            try:
                text = repr(body)
            except (RecursionError, ValueError):     # nested 1,000 deep; an int of 5,000 digits
                text = f"<unrepresentable {type(body).__name__}>"
    return text[:limit].replace("\x00", "\ufffd")


def kept_value(body: object, limit: int = 1 << 20) -> object:
    """`body` itself when it encodes as JSON within `limit` bytes, else `kept_text(body)` cut
    until it encodes within `limit` (escapes can make text several times longer)."""
    try:
        if len(orjson.dumps(body)) <= limit:
            return body
    except (TypeError, ValueError):
        pass
    text = kept_text(body, limit)
    while len(orjson.dumps(text)) > limit:
        text = text[:len(text) // 4]
    return text
