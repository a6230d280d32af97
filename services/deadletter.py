"""Dead letters that always fit a Kafka message: one builder for every process that writes
faultline.deadletter (the router, ingest, `faultline api`).

aiokafka refuses a record over its max_request_size (1 MiB) with MessageSizeTooLargeError:
a dead letter that large could never be sent, and its message would be retried for ever (a
consumer) or answered 500 (the api). So a letter keeps the value as decoded JSON when that
encodes within MAX_KEPT bytes, else its text cut (halved until the letter fits: escapes such
as \\u0001 make the text up to six times longer once encoded), with `truncated` = the length
of the whole. An accepted value is held to MAX_VALUE (`fits`) before anything sends it.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

# aiokafka's max_request_size is 1 MiB, counted with the record's key and framing: a routed or
# published value beyond MAX_VALUE is refused before it is sent; a dead letter stays within
# MAX_LETTER, far from both.
MAX_VALUE = 900_000
MAX_KEPT = 256 * 1024
MAX_LETTER = MAX_KEPT + 8192
MAX_REASON = 4096


def fits(value: bytes) -> bool:
    """Whether an encoded value may be sent (routed, published) as it is."""
    return len(value) <= MAX_VALUE


def dead_letter(reason: str, where: Mapping[str, object], value: object,
                raw: bytes | str | None = None) -> bytes:
    """The encoded letter {"reason", **where, "value"[, "truncated"]}; never raises, never over
    MAX_LETTER bytes. `value` is kept as JSON when given and small enough; otherwise the text of
    `raw` (the bytes as received, UTF-8 with replacement), or of `value` itself (a string as it
    is, anything else as its JSON), is kept cut to fit."""
    letter: dict[str, object] = {"reason": _clean(reason[:MAX_REASON]), **where, "value": None}
    if value is not None:
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
    if value is None:
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
