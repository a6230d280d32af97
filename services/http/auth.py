"""Bearer tokens on the HTTP API (issue 10, security; the roles: services/access.py).

Every route but /healthz, /readyz, /metrics and the documentation needs `Authorization:
Bearer <token>`. No token, another scheme, or a token that is not a live one: 401 with
`WWW-Authenticate: Bearer`. A live token whose role may not do this (or not in that city):
403, naming the role and what it lacks. The answer never echoes the token, and no log line
carries one.

A token's holder is looked up in `api_tokens` and kept for CACHE_S seconds (at most
CACHE_MAX holders), so a storm of intake requests costs one look-up per token per few
seconds; a revoked token stops working within CACHE_S. Only live tokens are cached: a flood
of made-up tokens cannot grow memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from services.access import Principal, TokenStore, token_hash

CACHE_S = 5.0
CACHE_MAX = 1024
CHALLENGE = {"WWW-Authenticate": "Bearer"}

# The OpenAPI answers every guarded operation may give.
AUTH_ANSWERS = {
    401: {"description": "no bearer token, or not a live one (`faultline token create`)"},
    403: {"description": "the token's role may not do this, or not in this city"},
}


class Auth:
    def __init__(self, db: AsyncEngine, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = TokenStore(db)
        self.clock = clock
        self._held: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization")
        if not header:
            raise HTTPException(401, "a bearer token is required: Authorization: Bearer <token> "
                                     "(faultline token create)", headers=CHALLENGE)
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "expected Authorization: Bearer <token>", headers=CHALLENGE)
        key = token_hash(token)
        held = self._held.get(key)
        now = self.clock()
        if held is not None and held[1] > now:
            return held[0]
        who = await self.store.principal(token)
        if who is None:
            self._held.pop(key, None)
            raise HTTPException(401, "the bearer token is not valid (unknown or revoked)", headers=CHALLENGE)
        self._held[key] = (who, now + CACHE_S)
        self._held.move_to_end(key)
        while len(self._held) > CACHE_MAX:
            self._held.popitem(last=False)
        return who

    def needs(self, permission: str) -> Callable[[Request], Awaitable[Principal]]:
        """A route dependency: the holder, who may do `permission` somewhere (a city operator's
        city is checked again where the city is known: `check`)."""
        async def dependency(request: Request) -> Principal:
            who = await self.principal(request)
            if not who.may(permission, who.city):
                raise HTTPException(403, f"role {who.role} may not {permission}")
            return who
        return dependency


def check(who: Principal, permission: str, city: str | None, what: str) -> None:
    """403 unless `who` may do `permission` on `what`, which is of `city`."""
    if not who.may(permission, city):
        scope = f" (this token is {who.city}'s)" if who.city else ""
        raise HTTPException(403, f"role {who.role} may not {permission} {what}{scope}")
