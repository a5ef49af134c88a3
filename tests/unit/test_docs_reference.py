"""The configuration reference page is what the typed config models say (regenerate with `make docs`)."""

from __future__ import annotations

from mlops.docs_reference import PAGE, config_reference


def test_the_committed_configuration_reference_is_current():
    assert PAGE.exists(), f"{PAGE} is missing: run `make docs`"
    assert PAGE.read_text() == config_reference(), f"{PAGE} is stale: run `make docs` and commit it"


def test_every_config_field_is_described():
    from mlops.docs_reference import _models
    from pipelines.config import UseCase

    missing = [f"{m.__name__}.{n}" for _, m in _models(UseCase) for n, f in m.model_fields.items() if not f.description]
    assert not missing, f"fields without a description (the reference would show none): {missing}"
