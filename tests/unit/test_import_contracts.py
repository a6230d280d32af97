"""STYLE.md 5: the stages never import each other and nothing imports services/
(the import-linter contracts in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_no_import_cycle_among_the_products_modules():
    """Issue 8: no module imports, even inside a function, one that imports it back
    (services/commands/process.py and the api and ingest processes did)."""
    import grimp  # import-linter's own graph builder

    graph = grimp.build_graph("services", "shared", "correlator", "dispatcher", "alarm_ingest")
    cycles = sorted((module, imported) for module in graph.modules
                    for imported in graph.find_modules_directly_imported_by(module)
                    if graph.find_shortest_chain(importer=imported, imported=module))
    assert cycles == []
