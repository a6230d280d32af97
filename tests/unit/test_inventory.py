"""The inventory (CONTRACT.md §1): validation with every problem named, indexes, importance."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from shared.inventory import Circuit, Customer, InventoryError, load_inventory, parse_inventory

DOC = {
    "customers": [
        {"customer_id": "C-NH", "name": "南方航空集团公司", "level": "provincial", "grade": "gold",
         "hq_city": "GZ"},
        {"customer_id": "C-GZ-1", "name": "甲公司", "level": "city", "grade": "standard"},
        {"customer_id": "C-GZ-2", "name": "乙公司", "level": "city", "grade": "silver"},
        {"customer_id": "C-GZ-3", "name": "丙公司", "level": "city", "grade": "diamond"},
        {"customer_id": "C-GZ-4", "name": "丁公司", "level": "city", "grade": "bronze"},
    ],
    "resources": [
        {"resource_id": "GZ-CPE-0001", "layer": "cpe", "city": "GZ", "maintainer": "city"},
        {"resource_id": "GZ-OTN-A:1-3-1", "layer": "transmission", "city": "GZ", "maintainer": "province"},
        {"resource_id": "GZ-OTN-B:2-1-4", "layer": "transmission", "city": "GZ", "maintainer": "province"},
        {"resource_id": "GZ-PE-01:GE0/0/1", "layer": "data", "city": "GZ", "maintainer": "city"},
        {"resource_id": "GZ-PE-02:GE0/0/1", "layer": "data", "city": "GZ", "maintainer": "city"},
    ],
    "circuits": [
        {"circuit_id": "GZ-INT-0001", "customer_id": "C-NH", "service_type": "internet",
         "a_city": "GZ", "z_city": None, "span": "local", "maintenance_transferred": True,
         "paths": [["GZ-CPE-0001", "GZ-OTN-A:1-3-1", "GZ-PE-01:GE0/0/1"],
                   ["GZ-CPE-0001", "GZ-OTN-B:2-1-4", "GZ-PE-02:GE0/0/1"]]},
        {"circuit_id": "GZ-INT-0002", "customer_id": "C-GZ-1", "service_type": "internet",
         "a_city": "GZ", "span": "local",
         "paths": [["GZ-OTN-A:1-3-1", "GZ-PE-01:GE0/0/1", "GZ-OTN-A:1-3-1"]]},
        {"circuit_id": "GZ-CL-0001", "customer_id": "C-GZ-2", "service_type": "circuit_lease",
         "a_city": "GZ", "z_city": "SZ", "span": "cross_city", "maintenance_transferred": False,
         "paths": [["GZ-OTN-B:2-1-4"]]},
        {"circuit_id": "GZ-CL-0002", "customer_id": "C-GZ-4", "service_type": "circuit_lease",
         "a_city": "GZ", "z_city": "湖南长沙", "span": "cross_province",
         "paths": [["GZ-OTN-B:2-1-4"]]},
    ],
}


@pytest.fixture()
def doc() -> dict:
    return copy.deepcopy(DOC)


def problems_of(doc: dict) -> list[str]:
    with pytest.raises(InventoryError) as exc:
        parse_inventory(doc)
    return exc.value.problems


def test_loads_in_file_order(doc: dict) -> None:
    inv = parse_inventory(doc)
    assert list(inv.customers) == ["C-NH", "C-GZ-1", "C-GZ-2", "C-GZ-3", "C-GZ-4"]
    assert list(inv.circuits) == ["GZ-INT-0001", "GZ-INT-0002", "GZ-CL-0001", "GZ-CL-0002"]
    c = inv.circuits["GZ-INT-0001"]
    assert isinstance(c, Circuit)
    assert c.paths == (("GZ-CPE-0001", "GZ-OTN-A:1-3-1", "GZ-PE-01:GE0/0/1"),
                       ("GZ-CPE-0001", "GZ-OTN-B:2-1-4", "GZ-PE-02:GE0/0/1"))
    assert inv.customers["C-NH"] == Customer("C-NH", "南方航空集团公司", "provincial", "gold", "GZ", True)
    assert inv.resources["GZ-OTN-A:1-3-1"].maintainer == "province"


def test_defaults(doc: dict) -> None:
    inv = parse_inventory(doc)
    assert inv.circuits["GZ-INT-0002"].maintenance_transferred is True
    assert inv.circuits["GZ-INT-0002"].z_city is None
    assert inv.circuits["GZ-CL-0001"].maintenance_transferred is False
    assert inv.customers["C-GZ-1"].hq_city is None


def test_important_customers(doc: dict) -> None:
    inv = parse_inventory(doc)
    assert inv.customers["C-NH"].important  # provincial-level
    assert not inv.customers["C-GZ-1"].important  # ordinary
    assert inv.customers["C-GZ-2"].important  # holds a cross_city circuit
    assert inv.customers["C-GZ-3"].important  # diamond
    assert inv.customers["C-GZ-4"].important  # holds a cross_province circuit


def test_circuits_of(doc: dict) -> None:
    inv = parse_inventory(doc)
    assert [c.circuit_id for c in inv.circuits_of("C-NH")] == ["GZ-INT-0001"]
    assert inv.circuits_of("C-GZ-3") == ()
    assert inv.circuits_of("nobody") == ()


def test_circuits_on(doc: dict) -> None:
    inv = parse_inventory(doc)
    on = [(c.circuit_id, i) for c, i in inv.circuits_on("GZ-OTN-A:1-3-1")]
    assert on == [("GZ-INT-0001", 0), ("GZ-INT-0002", 0)]  # listed twice in one path: once
    assert [(c.circuit_id, i) for c, i in inv.circuits_on("GZ-CPE-0001")] == [
        ("GZ-INT-0001", 0), ("GZ-INT-0001", 1)]
    assert inv.circuits_on("unknown") == ()


def test_extra_fields_are_ignored(doc: dict) -> None:
    doc["version"] = 7
    doc["customers"][0]["account_manager"] = "张三"
    doc["resources"][0]["vendor"] = "Huawei"
    doc["circuits"][0]["bandwidth_mbps"] = 1000
    inv = parse_inventory(doc)
    assert inv.customers["C-NH"].name == "南方航空集团公司"


def test_bad_enum(doc: dict) -> None:
    doc["customers"][0]["level"] = "prov"
    assert problems_of(doc) == ["customers[0].level: 'prov' is not one of provincial, city"]


def test_bad_enums_everywhere(doc: dict) -> None:
    doc["customers"][1]["grade"] = "platinum"
    doc["resources"][2]["layer"] = "radio"
    doc["resources"][3]["maintainer"] = "vendor"
    doc["circuits"][1]["service_type"] = "ftth"
    doc["circuits"][2]["span"] = "national"
    paths = [p.split(":")[0] for p in problems_of(doc)]
    assert paths == ["customers[1].grade", "resources[2].layer", "resources[3].maintainer",
                     "circuits[1].service_type", "circuits[2].span"]


def test_unknown_customer(doc: dict) -> None:
    doc["circuits"][3]["customer_id"] = "C-XX"
    assert problems_of(doc) == ["circuits[3] (GZ-CL-0002): customer C-XX is not in customers"]


def test_unknown_resource_on_path(doc: dict) -> None:
    doc["circuits"][0]["paths"][1][1] = "GZ-OTN-Z:9-9-9"
    assert problems_of(doc) == [
        "circuits[0].paths[1][1] (GZ-INT-0001): resource GZ-OTN-Z:9-9-9 is not in resources"]


def test_duplicate_ids(doc: dict) -> None:
    doc["resources"].append(dict(doc["resources"][3]))
    doc["customers"].append(dict(doc["customers"][0]))
    doc["circuits"].append(dict(doc["circuits"][0]))
    assert problems_of(doc) == [
        "customers[5]: duplicate customer_id C-NH (also customers[0])",
        "resources[5]: duplicate resource_id GZ-PE-01:GE0/0/1 (also resources[3])",
        "circuits[4]: duplicate circuit_id GZ-INT-0001 (also circuits[0])",
    ]


def test_missing_fields(doc: dict) -> None:
    del doc["customers"][2]["grade"]
    del doc["resources"][0]["city"]
    del doc["circuits"][2]["paths"]
    problems = problems_of(doc)
    assert problems == ["customers[2].grade: required field is missing",
                        "resources[0].city: required field is missing",
                        "circuits[2].paths: required field is missing"]


def test_missing_section() -> None:
    assert problems_of({"customers": [], "resources": []}) == ["circuits: required field is missing"]


def test_wrong_types(doc: dict) -> None:
    doc["circuits"][0]["maintenance_transferred"] = "yes"
    doc["circuits"][1]["paths"] = "GZ-OTN-A:1-3-1"
    doc["customers"][0]["name"] = 42
    doc["resources"] = {"GZ-CPE-0001": {}}
    problems = problems_of(doc)
    assert problems[0].startswith("customers[0].name: must be a string")
    assert problems[1] == "resources: must be a list (got dict)"
    assert problems[2].startswith("circuits[0].maintenance_transferred: must be true or false")
    assert problems[3].startswith("circuits[1].paths: must be a list")


def test_entry_not_an_object(doc: dict) -> None:
    doc["customers"][1] = "C-GZ-1"
    problems = problems_of(doc)
    assert problems[0].startswith("customers[1]: must be a mapping")


def test_empty_paths(doc: dict) -> None:
    doc["circuits"][0]["paths"] = []
    doc["circuits"][1]["paths"] = [["GZ-CPE-0001"], []]
    assert problems_of(doc) == ["circuits[0].paths: must not be empty",
                                "circuits[1].paths[1]: must not be empty"]


def test_cross_city_needs_z_city(doc: dict) -> None:
    doc["circuits"][2]["z_city"] = None
    assert problems_of(doc) == ["circuits[2].z_city (GZ-CL-0001): required when span is cross_city"]


def test_cross_city_z_city_is_another_city(doc: dict) -> None:
    doc["circuits"][2]["z_city"] = "GZ"
    problems = problems_of(doc)
    assert len(problems) == 1 and problems[0].startswith("circuits[2].z_city (GZ-CL-0001): GZ is the a_city")


def test_local_circuit_with_another_z_city(doc: dict) -> None:
    doc["circuits"][1]["z_city"] = "SZ"
    problems = problems_of(doc)
    assert len(problems) == 1 and problems[0].startswith("circuits[1].z_city (GZ-INT-0002)")


def test_several_problems_listed_together(doc: dict) -> None:
    doc["customers"][0]["level"] = "prov"
    doc["resources"].append({"resource_id": "GZ-PE-01:GE0/0/1", "layer": "data", "city": "GZ",
                             "maintainer": "city"})
    doc["circuits"][3]["customer_id"] = "C-XX"
    doc["circuits"][0]["paths"] = []
    doc["circuits"][2]["z_city"] = None
    with pytest.raises(InventoryError) as exc:
        parse_inventory(doc, "inv.json")
    assert exc.value.problems == [
        "customers[0].level: 'prov' is not one of provincial, city",
        "resources[5]: duplicate resource_id GZ-PE-01:GE0/0/1 (also resources[3])",
        "circuits[0].paths: must not be empty",
        "circuits[2].z_city (GZ-CL-0001): required when span is cross_city",
        "circuits[3] (GZ-CL-0002): customer C-XX is not in customers",
    ]
    assert "inv.json" in str(exc.value)


def test_an_invalid_customer_does_not_cascade(doc: dict) -> None:
    doc["customers"][0]["grade"] = "top"  # C-NH is still known by id: no "not in customers"
    assert problems_of(doc) == [
        "customers[0].grade: 'top' is not one of diamond, gold, silver, bronze, standard"]


def test_document_not_an_object() -> None:
    assert problems_of([1, 2]) == ["(document): must be a JSON object with customers, resources, circuits"]  # type: ignore[arg-type]


def test_load_file(tmp_path: Path) -> None:
    path = tmp_path / "inv.json"
    path.write_text(json.dumps(DOC, ensure_ascii=False), encoding="utf-8")
    inv = load_inventory(path)
    assert len(inv.circuits) == 4


def test_load_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as exc:
        load_inventory(tmp_path / "nope.json")
    assert len(exc.value.problems) == 1
    assert exc.value.problems[0].startswith(f"{tmp_path / 'nope.json'}: cannot read")


def test_load_bad_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "inv.json"
    path.write_text('{\n  "customers": [],\n  "resources": [,]\n}\n', encoding="utf-8")
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    assert len(exc.value.problems) == 1
    assert exc.value.problems[0].startswith(f"{path}:3:")
    assert "invalid JSON" in exc.value.problems[0]


# -- hostile files: size and nesting are bounded (issue 7, part 5) ----------------------------


def _nested(depth: int) -> list:
    """`depth` lists, one inside the other: [[[...]]]."""
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "inv.json"
    path.write_text(json.dumps(DOC), encoding="utf-8")
    size = path.stat().st_size
    assert len(load_inventory(path, max_bytes=size).circuits) == len(DOC["circuits"])
    with pytest.raises(InventoryError) as exc:
        load_inventory(path, max_bytes=size - 1)
    assert exc.value.problems == [f"{path}: refused: larger than the limit of {size - 1} bytes"]


def test_default_size_limit_is_256_mib_and_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate((256 << 20) + 1)  # sparse: refused from its size, never read
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    assert exc.value.problems == [f"{path}: refused: larger than the limit of 256 MiB"]


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_endless_device_is_read_only_up_to_the_limit() -> None:
    # not a regular file: no size to check, so the bounded read must stop by itself
    with pytest.raises(InventoryError) as exc:
        load_inventory("/dev/zero", max_bytes=1 << 20)
    assert exc.value.problems == ["/dev/zero: refused: larger than the limit of 1 MiB"]


def test_nesting_beyond_64_levels_is_refused(tmp_path: Path, doc: dict) -> None:
    doc["customers"][0]["notes"] = _nested(61)  # document, customers, customer + 61 = 64: fine
    assert len(parse_inventory(doc).customers) == len(DOC["customers"])
    doc["customers"][0]["notes"] = _nested(62)  # 65 levels: an ignored field is still read
    with pytest.raises(InventoryError) as exc:
        parse_inventory(doc, "inv.json")
    assert exc.value.problems == ["inv.json: refused: nested deeper than 64 levels"]
    doc["customers"][0]["notes"] = _nested(900)
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    assert exc.value.problems == [f"{path}: refused: nested deeper than 64 levels"]


def test_nesting_beyond_the_json_parser_limit_is_refused_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "deeper.json"
    path.write_text("[" * 5000 + "]" * 5000, encoding="utf-8")
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    [problem] = exc.value.problems
    assert problem.startswith(f"{path}:1:") and problem.endswith(": refused: nested deeper than 64 levels")
