"""The rollout's approval step: Airflow's human-in-the-loop branch operator, keeping who answered."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator


class RolloutApproval(HITLBranchOperator):
    """:class:`HITLBranchOperator` that also pushes the answer (options, who, when) to XCom under the key
    ``answer``, for the task that acts on it to record; a timed-out request has no one in ``by``."""

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if "error" not in event:
            at = event.get("responded_at")
            context["ti"].xcom_push(
                key="answer",
                value={
                    "chosen": list(event.get("chosen_options") or []),
                    "by": event.get("responded_by_user"),
                    "at": at.isoformat() if hasattr(at, "isoformat") else at,
                },
            )
        return super().execute_complete(context=context, event=event)
