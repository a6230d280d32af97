"""Start-up configuration shared by the commands: the inventory and the rulebook, refused
whole with every problem named (CONTRACT §3 exit status 2)."""

from __future__ import annotations


class UsageError(Exception):
    """Unusable arguments or inputs refused at start-up; each line names a problem."""


def load_config(inventory_path: str | None, rulebook_path: str | None):
    from shared.inventory import InventoryError, load_inventory
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
            inventory = load_inventory(inventory_path)
        except InventoryError as err:
            problems.extend(f"inventory: {p}" for p in err.problems)
    if problems:
        raise UsageError("\n".join(problems))
    return inventory, rulebook
