import sys
from pathlib import Path

# Tests import the project's packages and the scenario builder from the checkout.
ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(ROOT / "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)
