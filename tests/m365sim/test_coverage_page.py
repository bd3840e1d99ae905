"""The committed coverage page lists exactly the routes m365sim serves."""

from pathlib import Path

from m365sim.app import collect_routes
from m365sim.coverage import render

PAGE = Path(__file__).parents[2] / "docs" / "m365sim" / "coverage.md"


def test_coverage_page_is_current() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(collect_routes()), (
        "docs/m365sim/coverage.md is stale: "
        "run `python -m m365sim.coverage > docs/m365sim/coverage.md`"
    )
