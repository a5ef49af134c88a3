"""The use-case config: loads typed, and a bad file names every bad field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines import settings
from pipelines.config import ConfigError, load_all, load_usecase

REPO_CONFIG = settings.REPO_ROOT / "configs" / "churn.yaml"


def _write(tmp_path: Path, raw: dict, name: str = "churn") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_demo_config_loads_typed():
    usecase = load_usecase(REPO_CONFIG)
    assert usecase.name == "churn"
    assert usecase.task == "binary"
    assert set(usecase.source.datasets) == {"activity", "labels"}
    activity = usecase.source.datasets["activity"]
    assert activity.column("monthly_charges").type == "float"
    assert usecase.dag_id("ingest") == "churn_ingest"
    assert usecase.label.delay_days == 7


def test_every_config_in_configs_loads():
    assert [u.name for u in load_all(settings.REPO_ROOT / "configs")] == ["churn", "store_sales"]


def test_several_bad_fields_are_all_listed_with_their_paths(tmp_path):
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    raw["task"] = "multiclass"
    raw["schedule"]["retries"] = 0
    raw["source"]["datasets"]["activity"]["columns"][5]["type"] = "integer"
    raw["source"]["datasets"]["activity"]["columns"][6]["min"] = "cheap"
    raw["unknown_field"] = 1
    with pytest.raises(ConfigError) as err:
        load_usecase(_write(tmp_path, raw))
    message = str(err.value)
    assert "5 invalid field(s)" in message
    for path in (
        "task:",
        "schedule.retries:",
        "source.datasets.activity.columns.5.type:",
        "source.datasets.activity.columns.6.min:",
        "unknown_field:",
    ):
        assert path in message, f"{path} missing from:\n{message}"


def test_cross_references_are_checked(tmp_path):
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    raw["source"]["datasets"]["activity"]["event_time"] = "when"
    raw["source"]["datasets"]["activity"]["key"] = ["customer_id", "day"]
    raw["label"]["column"] = "left"
    with pytest.raises(ConfigError) as err:
        load_usecase(_write(tmp_path, raw))
    message = str(err.value)
    assert "event_time 'when' is not among the columns" in message
    assert "key columns ['day'] are not among the columns" in message
    assert "label.column: 'left' is not a column of dataset 'labels'" in message


def test_cron_presets_are_refused_because_their_intervals_are_empty(tmp_path):
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    raw["schedule"]["ingest"] = "@daily"
    with pytest.raises(ConfigError, match=r"schedule.ingest: '@daily' is not a 5-field cron expression"):
        load_usecase(_write(tmp_path, raw))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("name: [unclosed", "not valid YAML"), ("- a\n- b\n", "expected a mapping")],
)
def test_unreadable_files(tmp_path, text, expected):
    path = tmp_path / "churn.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_usecase(path)


def test_name_must_match_file_name(tmp_path):
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    with pytest.raises(ConfigError, match="must equal the file name 'other'"):
        load_usecase(_write(tmp_path, raw, name="other"))


def test_a_cron_without_a_fixed_period_is_refused(tmp_path):
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    raw["schedule"]["ingest"] = "0 0 * * 1-5"  # weekdays: Friday's interval would be three days
    with pytest.raises(ConfigError, match=r"schedule.ingest: '0 0 \* \* 1-5' does not tick at a fixed period"):
        load_usecase(_write(tmp_path, raw))


def test_the_data_interval_is_the_cron_period():
    import datetime as dt

    assert load_usecase(REPO_CONFIG).schedule.interval == dt.timedelta(days=1)


def test_feature_settings_must_name_fitting_columns(tmp_path):
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    raw["features"]["aggregates"]["plan"] = ["mean"]
    raw["features"]["one_hot"].append("tenure_days")
    raw["features"]["latest"].append("no_such_column")
    raw["features"]["windows_days"] = [7, 7]
    with pytest.raises(ConfigError) as err:
        load_usecase(_write(tmp_path, raw))
    message = str(err.value)
    assert "features.windows_days:" in message
    assert "features.aggregates: 'plan' has type category" in message
    assert "features.one_hot: 'tenure_days' has type int" in message
    assert "features.latest: 'no_such_column' is not a column of 'activity'" in message


def test_an_unknown_timezone_is_refused_at_load_time(tmp_path):
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    raw["schedule"]["timezone"] = "Mars/Olympus"
    with pytest.raises(ConfigError, match=r"schedule.timezone: 'Mars/Olympus' is not a known timezone"):
        load_usecase(_write(tmp_path, raw))


def test_training_settings_must_fit_the_task_and_the_features(tmp_path):
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    raw["training"]["primary_metric"] = "rmse"
    raw["training"]["segments"] = ["region", "postcode"]
    raw["training"]["candidates"]["ridge"] = {"kind": "ridge"}
    raw["training"]["promotion"].pop("floor")
    with pytest.raises(ConfigError) as err:
        load_usecase(_write(tmp_path, raw))
    message = str(err.value)
    assert "training.primary_metric: 'rmse' is not a binary metric" in message
    assert "training.segments: 'postcode' is not one of features.one_hot" in message
    assert "training.candidates.ridge.kind: 'ridge' does not fit a binary task" in message
    assert "training.promotion.floor" in message


def test_the_feature_service_version_comes_from_the_config(churn):
    from pipelines.features.definitions import feature_service_name

    assert feature_service_name(churn) == "churn_v1"
    bumped = churn.model_copy(update={"features": churn.features.model_copy(update={"version": 2})})
    assert feature_service_name(bumped) == "churn_v2"


REGRESSION_CONFIG = settings.REPO_ROOT / "configs" / "store_sales.yaml"


def test_the_regression_config_loads_with_a_synthetic_simulation():
    usecase = load_usecase(REGRESSION_CONFIG)
    assert usecase.task == "regression" and usecase.training.primary_metric == "neg_rmse"
    assert usecase.simulation.generator == "synthetic" and usecase.simulation.population == 300
    assert usecase.simulation.target.terms["promo=discount"] > 0
    churn = load_usecase(REPO_CONFIG)
    assert churn.simulation.generator == "churn" and churn.simulation.population == 2000


def _simulation_error(tmp_path: Path, change, config: Path = REGRESSION_CONFIG) -> str:
    raw = yaml.safe_load(config.read_text())
    change(raw)
    with pytest.raises(ConfigError) as err:
        load_usecase(_write(tmp_path, raw, config.stem))
    return str(err.value)


def _columns(raw: dict) -> dict:
    return {c["name"]: c for c in raw["source"]["datasets"]["activity"]["columns"]}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r["simulation"].update(generator="random"), "simulation.generator: Input should be"),
        (lambda r: r["simulation"].update(customers=10), "simulation.customers: the synthetic generator counts"),
        (lambda r: r["simulation"].pop("target"), "simulation.target: the synthetic generator needs a target"),
        (lambda r: r["simulation"].pop("drift"), "simulation.drift: the synthetic generator needs a drift block"),
        (lambda r: r["simulation"].update(entities=0), "simulation.entities: Input should be greater than"),
        (lambda r: r["simulation"]["target"].update(noise=-1), "simulation.target.noise: Input should be greater"),
        (lambda r: r["simulation"]["target"].update(terms={}), "simulation.target.terms: Dictionary should have"),
        (lambda r: r["simulation"]["target"]["terms"].update(visitors=1.0), "simulation.target.terms.visitors: "
         "'visitors' is not a column of dataset 'activity'"),
        (lambda r: r["simulation"]["target"]["terms"].update({"promo=flash": 1.0}),
         "simulation.target.terms.promo=flash: 'flash' is not one of the values"),
        (lambda r: r["simulation"]["target"]["terms"].update(region=1.0),
         "simulation.target.terms.region: 'region' has type category, need a numeric column (write 'region=<value>'"),
        (lambda r: r["simulation"]["target"]["terms"].update({"footfall=high": 1.0}),
         "simulation.target.terms.footfall=high: 'footfall=...' needs a category column"),
        (lambda r: r["simulation"]["drift"]["terms"].update(basket=1.0), "simulation.drift.terms.basket: "),
        (lambda r: r["simulation"]["drift"]["scale"].update(region=2.0), "simulation.drift.scale.region: 'region' has"),
        (lambda r: r["simulation"]["drift"]["scale"].update(footfall=0), "simulation.drift.scale: scale factors "
         "must be positive"),
        (lambda r: _columns(r)["footfall"].pop("max"), "source.datasets.activity.columns.5: 'footfall': the synthetic "
         "generator draws it between its min and max"),
        (lambda r: r["source"]["datasets"]["labels"]["columns"].append({"name": "store_name", "type": "string"}),
         "source.datasets.labels.columns: the synthetic generator fills"),
        (lambda r: r["source"]["datasets"].update(extra=r["source"]["datasets"]["activity"]),
         "simulation.generator: 'synthetic' fills one activity dataset besides the label dataset 'labels'"),
    ],
)  # fmt: skip
def test_bad_synthetic_simulation_fields_are_named(tmp_path, change, expected):
    message = _simulation_error(tmp_path, change)
    assert expected in message, message


@pytest.mark.parametrize("field", [{"entities": 10}, {"target": {"terms": {"tenure_days": 1.0}}}, {"drift": {}}])
def test_the_churn_generator_refuses_the_synthetic_fields(tmp_path, field):
    name = next(iter(field))
    message = _simulation_error(tmp_path, lambda r: r["simulation"].update(field), REPO_CONFIG)
    assert f"simulation.{name}: only the synthetic generator uses it" in message, message


@pytest.mark.parametrize(
    "table", ['activity"; DROP TABLE churn_labels; --', "customer activity", "a.b.c", "1st_table", "x'y"]
)
def test_a_table_name_that_is_not_a_plain_identifier_is_refused(tmp_path, table):
    """Issue 17, defect 7: a table name holding quotes and SQL was accepted by the loader."""
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    raw["source"]["datasets"]["activity"]["table"] = table
    with pytest.raises(ConfigError, match=r"source.datasets.activity.table: .* is not a plain SQL identifier"):
        load_usecase(_write(tmp_path, raw))


def test_a_table_in_a_schema_is_accepted(tmp_path):
    raw = yaml.safe_load(REPO_CONFIG.read_text())
    raw["source"]["datasets"]["activity"]["table"] = "crm.Customer_Activity"
    assert load_usecase(_write(tmp_path, raw)).source.datasets["activity"].table == "crm.Customer_Activity"
