"""The seam of ``pipelines.stores.feast_import``: Feast imported without typeguard's instrumentation
builds the same objects (their protos, but for the creation times), and typeguard is left as it was.
Fails loudly when the seam moves: if Feast stops instrumenting its classes (the seam is then useless)
or typeguard renames its decorator."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import _REPO

_PROBE = """
import json, sys
if sys.argv[1] == "plain":
    import feast
from pipelines.config import get_usecase
from pipelines.features.definitions import feast_objects
import typeguard, typeguard._decorators
from google.protobuf.json_format import MessageToDict
def timeless(value):  # every "meta" holds creation times only
    if isinstance(value, dict):
        return {k: timeless(v) for k, v in value.items() if k != "meta"}
    return [timeless(v) for v in value] if isinstance(value, list) else value
objects = feast_objects(get_usecase("churn"))  # imports Feast through feast_import, unless imported above
from feast import FeatureView
print(json.dumps({
    "instrumented": "check_argument_types_internal" in FeatureView.__init__.__code__.co_varnames,
    "typeguard_restored": typeguard.typechecked is typeguard._decorators.typechecked,
    "objects": {o.name: timeless(MessageToDict(o.to_proto())) for o in objects},
}))
"""


def _probe(how: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, how], cwd=_REPO, env=dict(os.environ), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_feast_loaded_without_typeguard_builds_the_same_objects_and_leaves_typeguard_as_it_was():
    plain, loaded = _probe("plain"), _probe("load")
    assert plain["instrumented"], "Feast no longer instruments FeatureView: drop pipelines/stores/feast_import.py"
    assert not loaded["instrumented"]
    assert loaded["typeguard_restored"] and plain["typeguard_restored"]
    assert loaded["objects"] == plain["objects"] and len(plain["objects"]) == 4
