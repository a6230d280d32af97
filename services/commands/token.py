"""`faultline token create | list | revoke`: the API's bearer tokens (services/access.py).

`create` prints the new token once, alone on stdout's one line (so a script can take it),
and what it is for on stderr; it is not kept, only its SHA-256. `list` never shows a token
or a hash. The database is the one the processes use (FAULTLINE_DATABASE_URL or
--database-url), migrated first like any process's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from services.access import CLI, AccessError, AuditTrail, TokenStore
from services.settings import UsageError
from shared.db.migrate import open_database


def _when(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _run(args: argparse.Namespace, url: str | None) -> int:
    engine = await open_database(url)
    try:
        store = TokenStore(engine)
        if args.token_command == "create":
            try:
                token_id, token = await store.create(args.role, args.city, args.name or "")
            except AccessError as err:
                raise UsageError(f"faultline token create: {err}") from None
            made = {"token_id": token_id, "role": args.role, "city": args.city}
            await AuditTrail(engine).record(CLI, "token create", detail=made)
            sys.stderr.write(f"token {token_id} ({args.role}{' ' + args.city if args.city else ''}): "
                             "shown once, keep it now\n")
            sys.stdout.write(token + "\n")
            return 0
        if args.token_command == "list":
            rows = await store.list()
            print(f"{'id':>5}  {'role':<17} {'city':<6} {'created':<20} {'revoked':<20} name")
            for r in rows:
                print(f"{r['id']:>5}  {r['role']:<17} {r['city'] or '-':<6} {_when(r['created_at']):<20} "
                      f"{_when(r['revoked_at']):<20} {r['name']}")
            return 0
        if args.token_command == "revoke":
            if await store.revoke(args.id):
                await AuditTrail(engine).record(CLI, "token revoke", detail={"token_id": args.id})
                sys.stderr.write(f"token {args.id} revoked\n")
                return 0
            sys.stderr.write(f"faultline token revoke: no active token {args.id}\n")
            return 1
        return 2
    finally:
        await engine.dispose()


def token_main(args: argparse.Namespace, url: str | None) -> int:
    return asyncio.run(_run(args, url))
