"""Extra links of task instances to what they produced, pushed at run time.

A task pushes the addresses it knows only once it has run (``publish_links``); the DAG file
declares the links' names on the task (``with_links``). At the end of the try, Airflow stores
each link under its own key, which the UI reads (``/api/v2/.../taskInstances/<task>/links``).
The addresses come from ``pipelines.reporting.links``, the ones the plugin's pages use.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from airflow.sdk import BaseOperatorLink, get_current_context

_KEY = "mlops_link: {}"


class _Produced(BaseOperatorLink):
    """The address the task pushed for this link's name ("" before it did, or when it failed first)."""

    label: ClassVar[str] = ""

    @property
    def name(self) -> str:
        return self.label

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        return XCom.get_value(ti_key=ti_key, key=_KEY.format(self.label)) or ""


_CLASSES: dict[str, type[_Produced]] = {}


def _link(label: str) -> _Produced:
    # One class per name: Airflow keys a link's stored address by its class name.
    if label not in _CLASSES:
        slug = re.sub(r"\W", "_", label)
        _CLASSES[label] = type(f"MLOps_{slug}_Link", (_Produced,), {"label": label})
    return _CLASSES[label]()


def with_links(output: Any, *labels: str) -> Any:
    """Give the task behind ``output`` (what calling a ``@task`` returned) extra links named ``labels``."""
    output.operator.operator_extra_links = [_link(label) for label in labels]
    return output


def publish_links(urls: dict[str, str | None]) -> None:
    """Inside a task: the addresses of its links, by name (None: not produced this time)."""
    ti = get_current_context()["ti"]
    for label, url in urls.items():
        if url:
            ti.xcom_push(key=_KEY.format(label), value=url)
