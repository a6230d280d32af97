"""The inventory over HTTP (issue 10, deliverable 5; services/inventory_store.py): bulk load
and queries of customers, circuits and resources.

- `POST /inventory` (admin): a whole CONTRACT §1 document. Checked whole; 422 with every
  problem named (`problems`), nothing changed; else it becomes the current version (201, or
  200 when equal to the current one). The processes apply it by draining and restarting
  their loops on it (services/inventory_store.py). Bodies up to FAULTLINE_HTTP_MAX_INVENTORY_
  BYTES, one at a time (services/http/guard.py).
- `GET /inventory`: the versions, newest first, and which one this process answers from.
- `GET /inventory/customers|circuits|resources` (+ `/{id}`): the inventory this API serves
  from — the current version once its watch has taken it, else the one it started on. Filters:
  customers by level, grade, hq_city; circuits by customer_id, service_type, city (either
  end), span; resources by layer, city, maintainer. A city operator's token sees its city's
  circuits and resources, and the customers with a circuit there.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from services.access import ADMIN, READ, Principal
from services.http.auth import AUTH_ANSWERS, Auth
from services.http.examples import answer
from services.http.face import Face
from services.http.guard import Limit, Offset, decode_json, paged
from services.http.models import Problem
from services.inventory_store import InventoryStore
from shared.inventory import Circuit, Customer, Inventory, InventoryError, Resource

MAX_PROBLEMS = 1000
EXAMPLE_DOC = {
    "customers": [{"customer_id": "C-NH", "name": "南方航空集团公司", "level": "provincial",
                   "grade": "diamond", "hq_city": "GZ"}],
    "resources": [{"resource_id": "GZ-OTN-A:1-3-1", "layer": "transmission", "city": "GZ",
                   "maintainer": "province"}],
    "circuits": [{"circuit_id": "GZ-INT-0001", "customer_id": "C-NH", "service_type": "internet",
                  "a_city": "GZ", "z_city": None, "span": "local", "maintenance_transferred": False,
                  "paths": [["GZ-OTN-A:1-3-1"]]}],
}
_LOAD_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"type": "object", "description": "an inventory document (CONTRACT §1): customers, "
                                                "resources, circuits"},
    "example": EXAMPLE_DOC}}}}


def customer_body(c: Customer) -> dict:
    return {"customer_id": c.customer_id, "name": c.name, "level": c.level, "grade": c.grade,
            "hq_city": c.hq_city, "important": c.important}


def resource_body(r: Resource) -> dict:
    return {"resource_id": r.resource_id, "layer": r.layer, "city": r.city, "maintainer": r.maintainer}


def circuit_body(c: Circuit) -> dict:
    return {"circuit_id": c.circuit_id, "customer_id": c.customer_id, "service_type": c.service_type,
            "a_city": c.a_city, "z_city": c.z_city, "span": c.span,
            "maintenance_transferred": c.maintenance_transferred, "paths": [list(p) for p in c.paths]}


class Served:
    """The inventory this API answers from, and its version (None: the file)."""

    def __init__(self, inventory: Inventory | None, version: int | None = None) -> None:
        self.inventory = inventory
        self.version = version

    def get(self) -> Inventory:
        if self.inventory is None:
            raise HTTPException(404, "this API runs without an inventory (FAULTLINE_INVENTORY, or "
                                     "POST /inventory)")
        return self.inventory


def _page(items: list[dict], offset: int, limit: int) -> Response:
    return paged(items[offset:offset + limit], offset, len(items) > offset + limit,
                 **{"X-Total-Count": str(len(items))})


def _city_circuits(inventory: Inventory, city: str) -> list[Circuit]:
    return [c for c in inventory.circuits.values() if city in (c.a_city, c.z_city)]


def inventory_routes(face: Face, auth: Auth, served: Served, trail: Any) -> APIRouter:
    store = InventoryStore(face.db)
    router = APIRouter(tags=["inventory"], responses=AUTH_ANSWERS)
    read, admin = Depends(auth.needs(READ)), Depends(auth.needs(ADMIN))
    unserved = {404: {"model": Problem, "description": "this API runs without an inventory "
                                                       "(no FAULTLINE_INVENTORY, none loaded yet)"}}

    @router.post("/inventory", status_code=201, openapi_extra=_LOAD_BODY,
                 responses={201: answer({"version": 2, "digest": "9f2c…", "customers": 1, "resources": 1,
                                         "circuits": 1, "loaded_at": 1764036000.0,
                                         "loaded_by": "noc admin (admin)", "changed": True}),
                            200: {"description": "equal to the current version: nothing changed"},
                            422: {"description": "refused: every problem in `problems`; nothing changed"}})
    async def load_inventory(request: Request, who: Principal = admin) -> Response:
        """Load a whole inventory (CONTRACT §1): every entry is checked; on any problem, 422 with
        each one named and the current inventory unchanged; else it becomes the current
        version at once (one row), and every process drains and restarts its loops on it."""
        doc, reason = decode_json(await request.body())
        if reason is not None:
            raise HTTPException(422, reason)
        try:
            meta, _inventory, new = await store.load(doc, f"{who.name} ({who.role})")
        except InventoryError as err:
            problems = err.problems[:MAX_PROBLEMS]
            body = {"detail": f"inventory refused: {len(err.problems)} problem(s); nothing changed",
                    "problems": problems, "more": max(0, len(err.problems) - MAX_PROBLEMS)}
            return Response(orjson.dumps(body), status_code=422, media_type="application/json")
        await trail.record(who, "POST /inventory", 0, {"version": meta["version"], "changed": new,
                                                       "digest": meta["digest"],
                                                       "circuits": meta["circuits"]})
        return Response(orjson.dumps({**meta, "changed": new}), status_code=201 if new else 200,
                        media_type="application/json")

    @router.get("/inventory", responses={200: answer({"serving": 2, "versions": [
        {"version": 2, "digest": "9f2c…", "customers": 1, "resources": 1, "circuits": 1,
         "loaded_at": 1764036000.0, "loaded_by": "noc admin (admin)"}]})})
    async def inventory_versions(limit: Limit = 100, who: Principal = read) -> Response:
        """The inventory versions loaded through the API, newest first, and the one this process
        answers from (`serving`; null: the FAULTLINE_INVENTORY file it started on)."""
        return Response(orjson.dumps({"serving": served.version, "versions": await store.versions(limit)}),
                        media_type="application/json")

    @router.get("/inventory/customers", responses={**unserved, 200: answer([customer_body(
        Customer("C-NH", "南方航空集团公司", "provincial", "diamond", "GZ", important=True))])})
    async def list_customers(level: str | None = None, grade: str | None = None, hq_city: str | None = None,
                             limit: Limit = 1000, offset: Offset = 0, who: Principal = read) -> Response:
        """Customers in inventory order; a city operator's token: those with a circuit in its city."""
        inventory = served.get()
        mine = {c.customer_id for c in _city_circuits(inventory, who.city)} if who.city else None
        items = [customer_body(c) for c in inventory.customers.values()
                 if (level is None or c.level == level) and (grade is None or c.grade == grade)
                 and (hq_city is None or c.hq_city == hq_city) and (mine is None or c.customer_id in mine)]
        return _page(items, offset, limit)

    @router.get("/inventory/circuits", responses={**unserved, 200: answer([EXAMPLE_DOC["circuits"][0]])})
    async def list_circuits(customer_id: str | None = None, service_type: str | None = None,
                            city: Annotated[str | None, Query(description="either end's city")] = None,
                            span: str | None = None, limit: Limit = 1000, offset: Offset = 0,
                            who: Principal = read) -> Response:
        """Circuits in inventory order; a city operator's token: those with an end in its city."""
        inventory = served.get()
        items = [circuit_body(c) for c in inventory.circuits.values()
                 if (customer_id is None or c.customer_id == customer_id)
                 and (service_type is None or c.service_type == service_type)
                 and (city is None or city in (c.a_city, c.z_city)) and (span is None or c.span == span)
                 and (who.city is None or who.city in (c.a_city, c.z_city))]
        return _page(items, offset, limit)

    @router.get("/inventory/resources", responses={**unserved, 200: answer([EXAMPLE_DOC["resources"][0]])})
    async def list_resources(layer: str | None = None, city: str | None = None, maintainer: str | None = None,
                             limit: Limit = 1000, offset: Offset = 0, who: Principal = read) -> Response:
        """Resources in inventory order; a city operator's token: its city's."""
        inventory = served.get()
        items = [resource_body(r) for r in inventory.resources.values()
                 if (layer is None or r.layer == layer) and (city is None or r.city == city)
                 and (maintainer is None or r.maintainer == maintainer)
                 and (who.city is None or r.city == who.city)]
        return _page(items, offset, limit)

    not_found = {404: {"model": Problem, "description": "no such entry in the inventory served"}}

    @router.get("/inventory/customers/{customer_id}", responses=not_found)
    async def get_customer(customer_id: Annotated[str, Path(examples=["C-NH"])],
                           who: Principal = read) -> Response:
        """One customer, with the ids of its circuits."""
        inventory = served.get()
        c = inventory.customers.get(customer_id)
        circuits = inventory.circuits_of(customer_id) if c is not None else ()
        if c is None or (who.city and not any(who.city in (x.a_city, x.z_city) for x in circuits)):
            raise HTTPException(404, f"no customer {customer_id[:80]}")
        return Response(orjson.dumps({**customer_body(c), "circuits": [x.circuit_id for x in circuits]}),
                        media_type="application/json")

    @router.get("/inventory/circuits/{circuit_id}", responses=not_found)
    async def get_circuit(circuit_id: Annotated[str, Path(examples=["GZ-INT-0001"])],
                          who: Principal = read) -> Response:
        """One circuit."""
        c = served.get().circuits.get(circuit_id)
        if c is None or (who.city and who.city not in (c.a_city, c.z_city)):
            raise HTTPException(404, f"no circuit {circuit_id[:80]}")
        return Response(orjson.dumps(circuit_body(c)), media_type="application/json")

    @router.get("/inventory/resources/{resource_id}", responses=not_found)
    async def get_resource(resource_id: Annotated[str, Path(examples=["GZ-OTN-A:1-3-1"])],
                           who: Principal = read) -> Response:
        """One resource, with the circuits whose paths use it."""
        inventory = served.get()
        r = inventory.resources.get(resource_id)
        if r is None or (who.city and r.city != who.city):
            raise HTTPException(404, f"no resource {resource_id[:80]}")
        on = list(dict.fromkeys(c.circuit_id for c, _path in inventory.circuits_on(resource_id)))
        return Response(orjson.dumps({**resource_body(r), "circuits": on}), media_type="application/json")

    return router
