"""Every case of the bad-input catalogue (tests/reliability/catalogue.py), and its docs page."""

from __future__ import annotations

import pytest

from tests.reliability import catalogue


def test_the_catalogue_has_at_least_30_cases():
    assert len(catalogue.CASES) >= 30 and len({c.id for c in catalogue.CASES}) == len(catalogue.CASES)


@pytest.mark.parametrize("case", catalogue.CASES, ids=[c.id for c in catalogue.CASES])
def test_bad_input_has_its_expected_outcome(case, home, churn, tmp_path):
    case.check(catalogue.World(home, tmp_path, churn))


def test_the_docs_page_is_the_catalogue():
    assert catalogue.PAGE.read_text() == catalogue.render(), (
        "docs/reliability/bad-input.md differs from the catalogue: run `python -m tests.reliability.catalogue`"
    )
