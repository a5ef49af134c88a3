"""Feast objects of every use case, derived from configs/<use case>.yaml.

A new use case gets its entity, source, feature view and feature service from
its YAML file alone; nothing here names a use case. `feast apply` (and the
pipeline's own apply) discovers the objects as module globals.
"""

from pipelines.config import load_all
from pipelines.features.definitions import feast_objects

for _usecase in load_all():
    if _usecase.features is not None:
        for _obj in feast_objects(_usecase):
            globals()[_obj.name] = _obj
