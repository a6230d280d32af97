"""Start-up configuration shared by the commands: the inventory and the rulebook, refused
whole with every problem named (CONTRACT §3 exit status 2)."""

from __future__ import annotations


class UsageError(Exception):
    """Unusable arguments or inputs refused at start-up; each line names a problem."""


def load_inventory_file(path: str):
    """The inventory at `path`, or UsageError naming each of its problems."""
    from shared.inventory import InventoryError, load_inventory

    try:
        return load_inventory(path)
    except InventoryError as err:
        raise UsageError("\n".join(f"inventory: {p}" for p in err.problems)) from err


def load_mappings_dir(path: str | None, v3_users: str | None = None):
    """The vendor mappings (built-in, with `path`'s files over them) and the SNMPv3 users, or
    UsageError naming each problem by file and entry."""
    from alarm_ingest.mapping import MappingError, load_mappings

    try:
        return load_mappings(path, v3_users)
    except MappingError as err:
        raise UsageError("\n".join(f"mappings: {p}" for p in err.problems)) from err


def load_config(inventory_path: str | None, rulebook_path: str | None):
    from shared.rulebook import RulebookError, load_rulebook

    problems: list[str] = []
    rulebook = inventory = None
    try:
        rulebook = load_rulebook(rulebook_path)
    except RulebookError as err:
        problems.extend(f"rulebook: {p}" for p in err.problems)
    if inventory_path is None:
        problems.append("inventory: no file given (--inventory or FAULTLINE_INVENTORY)")
    else:
        try:
            inventory = load_inventory_file(inventory_path)
        except UsageError as err:
            problems.extend(str(err).splitlines())
    if problems:
        raise UsageError("\n".join(problems))
    return inventory, rulebook
