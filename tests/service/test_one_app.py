"""`faultline run` and `faultline api` serve one app (services/http/app.build_app): the same
operations, with the same parameters, request bodies and answers, so a client written against
one works against the other. Built as each command builds it: `faultline run`'s by
services/commands/run.Embedded (started, as the command starts it), `faultline api`'s by
services/commands/api.create_api (service/http_support.production_api)."""

from __future__ import annotations

import dataclasses

import pytest
from api_routes import ROUTES

from service.http_support import MODES, asgi_client, one_app, production_api
from service.support import T0, FakeClock, live_service
from services.http.guard import HttpLimits


def _routes(spec: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


async def _documents(settings, tmp_path, *, api_inventory) -> tuple[dict, dict]:
    async with live_service(settings, FakeClock(T0)) as svc:
        run = svc.app.openapi()
    api = await production_api(f"sqlite+aiosqlite:///{tmp_path / 'api.sqlite3'}",
                               HttpLimits(max_body_bytes=4096, cors_origins=("https://noc.example",)),
                               inventory=settings.inventory if api_inventory else None)
    try:
        return run, api.app.openapi()
    finally:
        await api.engine.dispose()


@pytest.mark.parametrize("api_inventory", [False, True], ids=["api-without-inventory", "api-with-inventory"])
async def test_run_and_api_serve_the_same_operations_and_schemas(settings, tmp_path, api_inventory):
    run, api = await _documents(settings, tmp_path, api_inventory=api_inventory)
    assert _routes(run) == _routes(api) == ROUTES
    assert run["paths"].keys() == api["paths"].keys()
    for path, operations in run["paths"].items():                 # parameters, bodies, answers
        assert operations == api["paths"][path], path
    assert run["components"] == api["components"]                 # request and response schemas
    for name in ("IntakeAnswer", "InputOutcome", "FaultOut", "WorkOrderOut", "TroubleTicket",
                 "DecisionsPage", "Status"):
        assert name in run["components"]["schemas"], name
    assert run == api                                             # nothing else differs either


@pytest.mark.parametrize("mode", MODES)
async def test_each_mode_serves_the_document_it_is_built_with(settings, mode):
    limited = dataclasses.replace(settings, http=HttpLimits(max_body_bytes=4096))
    async with one_app(mode, limited, FakeClock(T0)) as app:
        served = await app.client.get("/openapi.json")
        assert served.status_code == 200 and served.json() == app.app.openapi()
        assert _routes(served.json()) == ROUTES


async def test_the_production_app_takes_its_limits_from_the_settings_it_is_built_with(tmp_path):
    """The settings stand-in of production_api gives create_api what it reads: `.http` reaches the guard."""
    api = await production_api(f"sqlite+aiosqlite:///{tmp_path / 'api.sqlite3'}",
                               HttpLimits(max_body_bytes=100))
    try:
        async with asgi_client(api.app, api.headers) as http:
            big = await http.post("/alarms", content=b"[" + b" " * 200 + b"]",
                                  headers={"content-type": "application/json"})
        assert big.status_code == 413 and "100 bytes" in big.json()["detail"]
    finally:
        await api.engine.dispose()


def _has_example(node: object) -> bool:
    if isinstance(node, dict):
        return "example" in node or "examples" in node or any(_has_example(v) for v in node.values())
    return isinstance(node, list) and any(_has_example(v) for v in node)


async def test_every_operation_of_the_document_has_an_example(settings):
    """Issue 10: an example for every operation — of its request body, a parameter, or what it
    answers (its success, or, for an operation not offered, its 405)."""
    async with live_service(settings, FakeClock(T0)) as svc:
        spec = svc.app.openapi()
    schemas = spec["components"]["schemas"]

    def resolved(node: object, depth: int = 0) -> object:
        if depth > 6:
            return node
        if isinstance(node, dict):
            if "$ref" in node:
                return resolved(schemas[node["$ref"].rsplit("/", 1)[-1]], depth + 1)
            return {k: resolved(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [resolved(v, depth + 1) for v in node]
        return node

    missing = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            answers = [a for code, a in op.get("responses", {}).items()
                       if code.startswith("2") or code == "405"]
            if not (_has_example(resolved(op.get("requestBody", {})))
                    or _has_example(op.get("parameters", [])) or _has_example(resolved(answers))):
                missing.append((method.upper(), path))
    assert missing == []
