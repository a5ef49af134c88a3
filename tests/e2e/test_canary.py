"""A canary rollout on the labelled history, with the real registry, inference and monitor code:
a better challenger passes the gate into a canary, serves its share of the entities (the same
ones on every day and rerun), and is promoted on matured labels; a deliberately worse one is
rolled back; while a canary runs, the monitor triggers no retrain. Every row either side serves or
shadow-scores carries its top reasons, which ``mlops lineage --entity`` shows."""

from __future__ import annotations

import copy
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from pipelines.config import RolloutSpec
from pipelines.inference.batch import feature_partition, pin_models, score_intervals
from pipelines.monitoring import policy
from pipelines.promotion import canary, rollout
from pipelines.promotion.gate import gate
from pipelines.reporting import lineage
from pipelines.reporting.status import render_status, status
from pipelines.responsible import explain
from pipelines.stores import mlflow_store, partitions, warehouse
from pipelines.training.dataset import build_training_data, split_by_time
from pipelines.training.model import Fitted, ScoringModel
from pipelines.training.train import MODEL_ARTIFACT, pip_requirements, train_candidates
from tests.conftest import LABELLED_END, LABELLED_START

pytestmark = pytest.mark.usefixtures("labelled_home")

ONE = dt.timedelta(days=1)
STARTED = LABELLED_START + 3 * ONE  # the canary serves from day 3; days 3-10 have matured labels by the end
DAYS = [[(STARTED + i * ONE).isoformat(), (STARTED + (i + 1) * ONE).isoformat()] for i in range(8)]


@pytest.fixture
def staged(churn):
    spec = RolloutSpec(mode="canary", canary_fraction=0.3, min_days=2, max_days=9, min_rows=500, resamples=200)
    # No fairness guardrails: the gate would judge a challenger's group gaps against those of the inverted
    # champion below (0: it decides the same for every group), and these tests are about rollouts.
    training = churn.training.model_copy(update={"fairness": None})
    return churn.model_copy(update={"rollout": spec, "training": training})


def _inverted(pipeline):
    """A logistic pipeline whose scores are another's turned upside down (1 - p: the signs of its
    coefficients and intercept flipped): a model that is clearly worse, and still an estimator the gate
    and inference explain like any other."""
    worse = copy.deepcopy(pipeline)
    worse[-1].coef_, worse[-1].intercept_ = -worse[-1].coef_, -worse[-1].intercept_
    return worse


def _trained(usecase) -> tuple:
    data = build_training_data(usecase, LABELLED_END)
    best = train_candidates(usecase, data, ["logistic"]).best_result()
    return data, best


def _register(usecase, data, best, inverted: bool = False) -> str:
    uri, run_id = best.model_uri, best.run_id
    if inverted:
        scoring = mlflow_store.load_model(best.model_uri).unwrap_python_model()
        fitted = Fitted(scoring.fitted.kind, scoring.fitted.task, _inverted(scoring.fitted.estimator))
        worse = ScoringModel(fitted, scoring.features, scoring.threshold)
        with mlflow_store.start_run(mlflow_store.experiment_id(usecase.name), "inverted") as run:
            example = data.frame[data.features].head(5)
            uri, run_id = mlflow_store.log_model(MODEL_ARTIFACT, worse, example, pip_requirements()), run.info.run_id
    return mlflow_store.register_challenger(usecase, uri, run_id, {"threshold": str(best.threshold)})


def _gate(usecase, data, version: str, force: bool) -> dict:
    context = {
        "training_set": str(data.path), "data_hash": data.content_hash, "training_window_end": STARTED.isoformat(),
    }  # fmt: skip
    holdout = split_by_time(data.frame, usecase.training, usecase.entity.name).holdout
    return gate(usecase, version, holdout, force=force, context=context)


def _served(url: str, table: str) -> pd.DataFrame:
    return pd.concat(
        [warehouse.read_interval(url, table, "churn", dt.datetime.fromisoformat(end)) for _, end in DAYS],
        ignore_index=True,
    )


def test_a_better_challenger_serves_a_canary_then_is_promoted_on_matured_labels(staged, warehouse_url):
    data, best = _trained(staged)
    champion = _register(staged, data, best, inverted=True)
    assert _gate(staged, data, champion, force=True)["decision"] == "promoted"  # the first model: at once
    challenger = _register(staged, data, best)
    record = _gate(staged, data, challenger, force=False)
    assert record["decision"] == "canary", record["reason"]
    client = mlflow_store.configure()
    assert mlflow_store.alias_version(client, "churn", mlflow_store.CHAMPION) == champion
    assert mlflow_store.alias_version(client, "churn", canary.CANARY) == challenger
    assert client.get_model_version("churn", challenger).tags["rollout_stage"] == "canary"
    client.delete_registered_model_alias("churn", canary.CANARY)  # as if a crash cut the gate short
    assert _gate(staged, data, challenger, force=False)["decision"] == "canary"  # its retry finishes the start
    assert mlflow_store.alias_version(client, "churn", canary.CANARY) == challenger

    models = pin_models(staged)
    assert models["canary"] == {"version": challenger, "rollout_id": f"churn-v{challenger}", "fraction": 0.3}
    assert models["challenger"]["version"] == challenger
    outcomes = score_intervals(staged, models, DAYS, warehouse_url, "test")
    served, shadow = _served(warehouse_url, "predictions"), _served(warehouse_url, "shadow_predictions")
    by_canary = served["model_version"] == challenger
    assert set(served.loc[by_canary, "stage"]) == {"canary"} and set(served.loc[~by_canary, "stage"]) == {"champion"}
    assert 0.25 < by_canary.mean() < 0.35
    assert sum(o["canary_served"] for o in outcomes) == by_canary.sum()
    expected = rollout.canary_mask(served["entity_id"], f"churn-v{challenger}", 0.3)
    assert (expected == by_canary.to_numpy()).all()  # the hash decides: the same entities every day
    both = served.merge(shadow, on=["entity_id", "as_of"], suffixes=("", "_shadow"))
    assert len(both) == len(served) == len(shadow)  # every entity has both scores: one served, one shadow
    assert (both["model_version"] != both["model_version_shadow"]).all()
    again = score_intervals(staged, pin_models(staged), DAYS[:1], warehouse_url, "rerun")  # a rerun: same split
    rerun = warehouse.read_interval(warehouse_url, "predictions", "churn", dt.datetime.fromisoformat(DAYS[0][1]))
    first = served[served["as_of"] == rerun["as_of"].iloc[0]]
    assert again[0]["canary_served"] == outcomes[0]["canary_served"]
    assert rerun.set_index("entity_id")["model_version"].equals(first.set_index("entity_id")["model_version"])

    traced = lineage.trace(staged, STARTED.date(), warehouse_url)  # the lineage of a day names the stages
    assert {m["version"]: m["served_as"] for m in traced["models"]} == {champion: ["champion"], challenger: ["canary"]}
    _check_reasons(staged, served, shadow, outcomes, warehouse_url, {champion, challenger})

    canary_text = canary.describe(staged)
    assert canary_text == f"the canary of v{challenger} (since {STARTED.date()})"
    since = {"evidence": ["data drift"], "onset": (LABELLED_END - 12 * ONE).isoformat()}  # labels of the new regime
    decision = policy.decide("churn", _drifted(), staged.monitoring.retrain, 7, since, None, 0, canary_text)
    assert decision.action == policy.TRIGGERED and f"{canary_text} is running" in decision.reason

    early = canary.judge_night(staged, STARTED + 8 * ONE)  # day 1 of the canary has matured: too early
    assert early["action"] == rollout.WAIT and "1 served day(s)" in early["reason"]
    shown = status([staged], lambda _: warehouse_url)  # what `mlops status` shows while the canary runs
    model = shown["usecases"]["churn"]["model"]
    assert model["aliases"]["canary"] == challenger and model["rollout"]["latest_judgment"]["action"] == "wait"
    text = render_status(shown)
    assert f"rollout: canary v{challenger} serves 30% of the entities since {STARTED.date()}" in text, text
    judged = canary.judge_night(staged, LABELLED_END)
    assert judged["action"] == rollout.PROMOTE, judged["reason"]
    assert judged["comparison"]["days"] == [d[0][:10] for d in DAYS] and judged["comparison"]["low"] > 0
    assert mlflow_store.alias_version(client, "churn", mlflow_store.CHAMPION) == challenger
    assert mlflow_store.alias_version(client, "churn", mlflow_store.PREVIOUS) == champion
    assert mlflow_store.alias_version(client, "churn", canary.CANARY) is None
    rec = canary.read_record(staged, challenger)
    assert [s["stage"] for s in rec["stages"]] == ["canary", "full"] and rec["stages"][1]["by"] == "monitor"
    assert [j["action"] for j in rec["judgments"]] == ["wait", "promote"]
    assert client.get_model_version("churn", challenger).tags["rollout_stage"] == "full"
    assert canary.judge_night(staged, LABELLED_END)["action"] == "none"  # a rerun of the night: nothing left
    assert pin_models(staged)["canary"] is None


def _check_reasons(usecase, served, shadow, outcomes, warehouse_url, versions) -> None:
    """Every row has the top ``inference.reasons`` of its score: the largest |contributions| of an
    explanation recomputed from the day's features, which add up with the bias to the score's log-odds;
    ``lineage.trace(entity=...)`` reads them back from the day's partition and ``render`` shows them."""
    count = usecase.inference.reasons
    assert count == 3  # configs/churn.yaml
    assert all(o["explain_seconds"] > 0 for o in outcomes)
    both = pd.concat([served, shadow], ignore_index=True)
    assert both["reasons"].notna().all()
    assert {len(json.loads(text)) for text in both["reasons"]} == {count}
    as_of = pd.Timestamp((STARTED + ONE).replace(tzinfo=None))  # the first canary day, as the warehouse has it
    day = both[both["as_of"] == as_of]
    features = partitions.read_partition(feature_partition(usecase, STARTED, STARTED + ONE))
    features = features.assign(entity_id=features[usecase.entity.name].astype(str)).set_index("entity_id")
    for version in sorted(versions):
        model = mlflow_store.load_model(mlflow_store.version_uri("churn", version))
        fitted, names = explain.fitted_of(model), model.unwrap_python_model().features
        rows = day[day["model_version"] == version].head(5)
        assert len(rows) == 5
        frame = features.loc[rows["entity_id"]]
        expected = explain.explain(fitted, frame, names)
        margin = np.log(rows["score"] / (1 - rows["score"])).to_numpy()  # the logistic's score is expit(margin)
        np.testing.assert_allclose(expected.margin(), margin, rtol=1e-4, atol=1e-4)
        for i, stored in enumerate(rows["reasons"]):
            reasons = json.loads(stored)
            top = np.argsort(-np.abs(expected.contributions[i]), kind="stable")[:count]
            assert [r["feature"] for r in reasons] == [names[j] for j in top]
            np.testing.assert_allclose([r["contribution"] for r in reasons], expected.contributions[i, top], atol=1e-5)

    stored = served[served["as_of"] == as_of].head(1)
    entity = stored["entity_id"].iloc[0]
    record = lineage.trace(usecase, STARTED.date(), warehouse_url, entity=entity)
    shown = record["entity"]
    assert shown["id"] == entity and shown["model_version"] == stored["model_version"].iloc[0]
    assert shown["score"] == pytest.approx(stored["score"].iloc[0])
    assert shown["reasons"] == json.loads(stored["reasons"].iloc[0]) and len(shown["reasons"]) == count
    text = lineage.render(record)
    assert f"entity {entity}: score {shown['score']:.4f}" in text, text
    for reason in shown["reasons"]:
        effect = "raises" if reason["contribution"] > 0 else "lowers"
        assert (
            f"{reason['feature']} = " in text
            and f"contribution {reason['contribution']:+.4f} ({effect} the score)" in text
        )
    with pytest.raises(LookupError, match="no churn prediction for"):
        lineage.trace(usecase, STARTED.date(), warehouse_url, entity="no-such-customer")


def test_a_worse_canary_is_rolled_back_and_the_champion_stays(staged, warehouse_url):
    data, best = _trained(staged)
    champion = _register(staged, data, best)
    _gate(staged, data, champion, force=True)
    worse = _register(staged, data, best, inverted=True)  # the gate would reject it: put in canary directly
    client = mlflow_store.configure()
    assert canary.start(client, staged, worse, champion, STARTED.isoformat(), "test: a deliberately worse canary")
    score_intervals(staged, pin_models(staged), DAYS, warehouse_url, "test")
    judged = canary.judge_night(staged, LABELLED_END)
    assert judged["action"] == rollout.ROLLBACK and "worse than the champion" in judged["reason"]
    assert mlflow_store.alias_version(client, "churn", mlflow_store.CHAMPION) == champion
    assert mlflow_store.alias_version(client, "churn", canary.CANARY) is None
    rec = json.loads((canary.decisions_dir(staged) / canary.record_name(worse)).read_text())
    assert [s["stage"] for s in rec["stages"]] == ["canary", "rolled_back"]
    assert rec["stages"][1]["comparison"]["high"] < 0
    assert client.get_model_version("churn", worse).tags["rollout_stage"] == "rolled_back"
    # After the rollback the champion serves every entity again.
    after = score_intervals(staged, pin_models(staged), DAYS[:1], warehouse_url, "after")
    assert after[0]["canary_served"] == 0 and after[0]["model_version"] == champion


def _drifted() -> policy.Evidence:
    night = LABELLED_END
    return policy.Evidence(
        night=night, current_start=night - ONE, current_rows=2000, drift_share=0.9, drifted_features=["x"],
        prediction_drifted=True,
    )  # fmt: skip


def test_a_new_canary_supersedes_a_running_one(staged):
    data, best = _trained(staged)
    champion = _register(staged, data, best)
    _gate(staged, data, champion, force=True)
    first, second = _register(staged, data, best), _register(staged, data, best, inverted=True)
    client = mlflow_store.configure()
    assert canary.start(client, staged, first, champion, STARTED.isoformat(), "first")
    assert not canary.start(client, staged, second, "99", STARTED.isoformat(), "the champion moved meanwhile")
    assert canary.start(client, staged, second, champion, STARTED.isoformat(), "second")
    assert canary.running(client, staged).version == second
    old = canary.read_record(staged, first)
    assert old["stages"][-1]["stage"] == "rolled_back" and f"superseded by v{second}" in old["stages"][-1]["reason"]
    assert np.isclose(canary.running(client, staged).fraction, 0.3)


def test_a_challenger_that_beats_the_champion_but_not_the_running_canary_is_rejected(staged):
    """One rollout at a time, and never a worse one replacing a better one: a version that passes against
    the champion while a canary runs is judged against the canary too, by the same gate."""
    data, best = _trained(staged)
    champion = _register(staged, data, best, inverted=True)  # a champion that is clearly worse
    _gate(staged, data, champion, force=True)
    running = _register(staged, data, best)
    assert _gate(staged, data, running, force=False)["decision"] == "canary"
    _, again = _trained(staged)  # the same data and seeds: the same model, in a run of its own
    same = _register(staged, data, again)  # as good as the canary, not better by the margin
    record = _gate(staged, data, same, force=False)
    assert record["decision"] == "rejected", record["reason"]
    assert f"passes against champion v{champion} but not against the running canary v{running}" in record["reason"]
    assert record["running_canary"]["version"] == running and "margin" in record["reason"]
    assert canary.running(mlflow_store.configure(), staged).version == running  # it keeps running
    # A forced promotion is a person's call: no canary, no comparison with one.
    forced = _gate(staged, data, _register(staged, data, _trained(staged)[1]), force=True)
    assert forced["decision"] == "promoted" and forced["running_canary"] is None


def test_a_person_promotes_or_aborts_a_canary_through_the_rollout_dags_function(staged):
    data, best = _trained(staged)
    champion = _register(staged, data, best)
    _gate(staged, data, champion, force=True)
    run = {"triggered_by": "alice", "airflow_run_id": "manual__1"}
    with pytest.raises(canary.NoCanary, match="no canary of churn is running: nothing to promote"):
        canary.override(staged, "promote", "ship it", run, STARTED.isoformat())
    client = mlflow_store.configure()
    first = _register(staged, data, best)
    canary.start(client, staged, first, champion, STARTED.isoformat(), "gate")
    with pytest.raises(ValueError, match="give a reason"):
        canary.override(staged, "abort", " ", run, STARTED.isoformat())
    aborted = canary.override(staged, "abort", "complaints from the field", run, STARTED.isoformat())
    assert aborted == {"model": "churn", "version": first, "stage": "rolled_back", "by": "manual: alice (manual__1)"}
    assert mlflow_store.alias_version(client, "churn", mlflow_store.CHAMPION) == champion
    second = _register(staged, data, best)
    canary.start(client, staged, second, champion, STARTED.isoformat(), "gate")
    assert canary.override(staged, "promote", "looks good", run, STARTED.isoformat())["stage"] == "full"
    assert mlflow_store.alias_version(client, "churn", mlflow_store.CHAMPION) == second
    stage = canary.read_record(staged, second)["stages"][-1]
    assert stage["by"] == "manual: alice (manual__1)" and stage["reason"] == "looks good"


@pytest.fixture
def approving(staged, tmp_path, monkeypatch):
    """Configs whose churn asks a person before a canary goes to every entity; the DAGs built from them."""
    import shutil

    import yaml

    from pipelines import settings

    configs = tmp_path / "configs"
    shutil.copytree(settings.configs_dir(), configs)
    raw = yaml.safe_load((configs / "churn.yaml").read_text())
    raw["rollout"] = {**staged.rollout.model_dump(), "approval": "required", "approvers": ["admin"]}
    raw["monitoring"]["retrain"]["cooldown_days"] = 14
    raw["training"].pop("fairness", None)  # as in ``staged``: no guardrails against the inverted champion
    (configs / "churn.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv("MLOPS_CONFIGS", str(configs))
    from pipelines.config import load_usecase

    return load_usecase(configs / "churn.yaml")


@pytest.fixture
def api_server():
    """Airflow's API server on the tests' metadata DB (as `make ui` serves it), logged in as admin."""
    import os
    import subprocess
    import sys
    import time

    import httpx

    from mlops import airflow_admin
    from mlops.server import isolated
    from pipelines import settings

    airflow_admin.migrate_db()
    port = isolated.free_port()
    log = settings.airflow_home() / f"api-server-{port}.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--port", str(port)],
            env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(1)
        passwords = json.loads((settings.airflow_home() / "simple_auth_manager_passwords.json.generated").read_text())
        token = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": passwords["admin"]})
        assert token.status_code in (200, 201), token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            yield client
    finally:
        process.terminate()
        process.wait(30)


def _canary_awaiting_approval(approving, warehouse_url) -> tuple[str, str]:
    """A clearly worse champion and a canary that served the labelled days: the night would promote it."""
    data, best = _trained(approving)
    champion = _register(approving, data, best, inverted=True)
    _gate(approving, data, champion, force=True)
    challenger = _register(approving, data, best)
    assert _gate(approving, data, challenger, force=False)["decision"] == "canary"
    score_intervals(approving, pin_models(approving), DAYS, warehouse_url, "test")
    return champion, challenger


def test_an_approval_answered_through_the_rest_api_promotes_the_canary(approving, warehouse_url, api_server):
    import threading
    import time

    from mlops import inprocess

    _, challenger = _canary_awaiting_approval(approving, warehouse_url)
    judged = canary.judge_night(approving, LABELLED_END)  # the monitor would promote: it asks instead
    assert judged["action"] == rollout.APPROVAL and judged["approval_run_id"] == f"approval__v{challenger}"
    assert "waiting since" in judged["reason"] and "no worse than the champion" in judged["reason"]
    assert canary.judge_night(approving, LABELLED_END + ONE)["action"] == rollout.APPROVAL  # asked once, waits

    dag = inprocess.load_dag("churn_rollout")
    seen: dict = {}

    def answer_when_asked() -> None:
        """A person answering in the UI, through the REST API: find the pending request, choose Promote."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            waiting = api_server.get("/api/v2/dags/~/dagRuns/~/hitlDetails", params={"dag_id_pattern": "churn_rollout"})
            pending = [d for d in waiting.json().get("hitl_details", []) if not d.get("response_received")]
            if pending:
                seen["detail"] = detail = pending[0]
                ti = detail["task_instance"]
                path = (
                    f"/api/v2/dags/churn_rollout/dagRuns/{ti['dag_run_id']}/taskInstances/ask_approval/-1/hitlDetails"
                )
                seen["answer"] = api_server.patch(path, json={"chosen_options": ["Promote"], "params_input": {}})
                return
            time.sleep(1)

    person = threading.Thread(target=answer_when_asked, daemon=True)
    person.start()
    with inprocess.params_restored(dag):  # the DAG runs in this thread (its tasks install signal handlers)
        run = dag.test(run_conf={"action": "approval", "reason": judged["reason"]})
    person.join(10)
    detail = seen["detail"]
    assert f"v{challenger} from canary" in detail["subject"] and "gate's decision" in detail["body"]
    assert detail["options"] == ["Promote", "Roll back"] and detail["defaults"] == ["Roll back"]
    assert [u["id"] for u in detail["assigned_users"]] == ["admin"]
    assert seen["answer"].status_code == 200, seen["answer"].text
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["promote_canary"] == "success" and states["roll_back_canary"] == "skipped", states
    client = mlflow_store.configure()
    assert mlflow_store.alias_version(client, "churn", mlflow_store.CHAMPION) == challenger
    last = canary.read_record(approving, challenger)["stages"][-1]
    assert last["stage"] == "full" and last["by"] == "approval: admin" and last["answered_at"], last
    assert client.get_model_version("churn", challenger).tags["rollout_answered_by"] == "approval: admin"


def test_an_unanswered_approval_takes_the_configured_default_when_it_times_out(approving, warehouse_url):
    """``rollout.approval_timeout_hours`` passes with no answer: Airflow's HITL trigger resumes the task with
    the default (``approval_default: abort``: roll back), and the record says nobody answered."""
    import importlib.util
    import threading

    from mlops import airflow_admin, inprocess
    from pipelines import settings

    airflow_admin.migrate_db()
    champion, challenger = _canary_awaiting_approval(approving, warehouse_url)
    assert canary.judge_night(approving, LABELLED_END)["action"] == rollout.APPROVAL
    # Two seconds: far below what the loader accepts (a night of the monitor), set on the loaded config
    # for this test only, on the DAG the rollout DAG file builds from it.
    quick = approving.model_copy(
        update={"rollout": approving.rollout.model_copy(update={"approval_timeout_hours": 2 / 3600})}
    )
    spec = importlib.util.spec_from_file_location("rollout_dag_file", settings.REPO_ROOT / "dags" / "rollout.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.build_rollout_dag(quick)
    # On Airflow 3.3 an unanswered request is resolved by the scheduler's sweep of tasks awaiting input:
    # dag.test has no scheduler, so the sweep runs here, every second, as a scheduler loop would call it.
    done, swept = threading.Event(), []

    def scheduler_sweep() -> None:
        from airflow.jobs.job import Job
        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

        runner = SchedulerJobRunner(job=Job(), executors=[])
        while not done.wait(1):
            try:
                runner.check_awaiting_input_timeouts()
            except Exception as exc:  # shown by the assertion below instead of a hang
                swept.append(exc)
                return

    sweeper = threading.Thread(target=scheduler_sweep, daemon=True)
    sweeper.start()
    try:
        with inprocess.params_restored(dag):
            run = dag.test(run_conf={"action": "approval", "reason": "the canary is no worse"})
    finally:
        done.set()
        sweeper.join(10)
    assert not swept, swept
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["ask_approval"] == "success" and states["roll_back_canary"] == "success", states
    assert states["promote_canary"] == "skipped", states
    client = mlflow_store.configure()
    assert mlflow_store.alias_version(client, "churn", mlflow_store.CHAMPION) == champion
    assert mlflow_store.alias_version(client, "churn", canary.CANARY) is None
    last = canary.read_record(approving, challenger)["stages"][-1]
    assert last["stage"] == "rolled_back" and last["by"] == "approval: timed out", last
    assert "no answer: rollout.approval_default is abort" in last["reason"]
