import sys
from pathlib import Path

# Tests import the project's packages and the scenario builder from the checkout.
ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(ROOT / "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

from collections.abc import Callable, Iterator  # noqa: E402

import pytest  # noqa: E402
from hub_listener import Listener  # noqa: E402


@pytest.fixture
def listeners() -> Iterator[Callable[..., Listener]]:
    """Make TMF event listeners (tests/hub_listener.py); all closed after the test."""
    made: list[Listener] = []

    def make(*args, **kwargs) -> Listener:
        made.append(Listener(*args, **kwargs))
        return made[-1]

    yield make
    for listener in made:
        listener.close()
