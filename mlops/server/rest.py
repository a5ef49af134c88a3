"""A small client of Airflow's public REST API (``/api/v2``), as an external system drives the server profile.

A token comes from the auth manager's ``POST /auth/token`` with a user's
password; every call carries it. Used by the profile's end-to-end test and the
scheduler benchmark; nothing here imports Airflow.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx

FINISHED = {"success", "failed"}


class AirflowAPIError(RuntimeError):
    """A call returned an error status; the message holds the method, path, status and body."""


class AirflowAPI:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30):
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._token: str | None = None

    def close(self) -> None:
        self._client.close()

    def token(self) -> str:
        response = self._client.post("/auth/token", json=self._credentials)
        if response.status_code not in (200, 201):
            raise AirflowAPIError(f"POST /auth/token: {response.status_code} {response.text[:300]}")
        self._token = response.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._token is None:
            self.token()
        for attempt in (1, 2):
            response = self._client.request(method, path, headers={"Authorization": f"Bearer {self._token}"}, **kwargs)
            if response.status_code == 401 and attempt == 1:  # expired: a new token, once
                self.token()
                continue
            break
        if response.status_code >= 400:
            raise AirflowAPIError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        content_type = response.headers.get("content-type", "")
        return response.json() if "json" in content_type else response.text

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    # What a user does in the UI, through the API.

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", json={"is_paused": False})

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 120) -> None:
        """Until the DAG processor has parsed every one of ``dag_ids``."""
        deadline = time.monotonic() + timeout
        while True:
            found = {d["dag_id"] for d in self.get("/api/v2/dags", limit=100)["dags"]}
            if set(dag_ids) <= found:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"DAGs not parsed after {timeout:.0f}s: {sorted(set(dag_ids) - found)}")
            time.sleep(2)

    def backfill(self, dag_id: str, start: dt.datetime, end: dt.datetime, max_active_runs: int = 4) -> dict:
        """A backfill of the runs whose logical dates fall in ``[start, end]``."""
        return self.request(
            "POST",
            "/api/v2/backfills",
            json={
                "dag_id": dag_id,
                "from_date": start.isoformat(),
                "to_date": end.isoformat(),
                "max_active_runs": max_active_runs,
                "reprocess_behavior": "none",
            },
        )

    def trigger(self, dag_id: str, logical_date: dt.datetime | None, conf: dict | None = None, **extra: Any) -> dict:
        body = {"logical_date": logical_date.isoformat() if logical_date else None, "conf": conf or {}, **extra}
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns", limit=500, order_by="logical_date")["dag_runs"]

    def queued_asset_events(self, dag_id: str) -> list[dict]:
        """Asset events that wait for a run of ``dag_id`` the scheduler has not created yet."""
        return self.get(f"/api/v2/dags/{dag_id}/assets/queuedEvents")["queued_events"]

    def wait_runs(
        self,
        dag_id: str,
        count: int,
        timeout: float = 600,
        poll: float = 1,
        run_type: str | None = None,
        settled: bool = False,
    ) -> list[dict]:
        """Until ``dag_id`` has at least ``count`` runs (of ``run_type``, when given) and all of them
        have finished; returns them. ``settled``: also until no asset event waits for a next run (an
        Asset-scheduled DAG's next run is created a scheduler loop after its previous one ends)."""
        deadline = time.monotonic() + timeout
        while True:
            runs = [r for r in self.runs(dag_id) if run_type in (None, r["run_type"])]
            if len(runs) >= count and all(r["state"] in FINISHED for r in runs):
                if not settled or not self.queued_asset_events(dag_id):
                    return runs
            if time.monotonic() > deadline:
                states = {r["dag_run_id"]: r["state"] for r in runs}
                raise TimeoutError(f"{dag_id}: {len(runs)} runs (wanted {count}) after {timeout:.0f}s: {states}")
            time.sleep(poll)

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 600, poll: float = 1) -> dict:
        """Until the run ``run_id`` of ``dag_id`` has finished; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} run {run_id} still {run['state']} after {timeout:.0f}s")
            time.sleep(poll)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """A task's log as text (the structured log's events joined)."""
        body = self.get(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}", full_content=True
        )
        content = body.get("content", body) if isinstance(body, dict) else body
        if isinstance(content, list):
            return "\n".join(str(e.get("event", e)) if isinstance(e, dict) else str(e) for e in content)
        return str(content)
