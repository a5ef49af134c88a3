"""Reading use-case files: one parse per version of a file, every problem of a file in one error."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipelines import settings
from pipelines.config.checks import cross_reference_problems
from pipelines.config.types import ConfigError
from pipelines.config.usecase import UseCase


def _format_errors(path: Path, err: ValidationError, raw: dict[str, Any]) -> str:
    problems = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "value_error" and not e["loc"]:
            continue  # cross-references, listed below from the raw file
        problems.append((loc, e["msg"].removeprefix("Value error, ")))
    problems += [p for p in cross_reference_problems(raw) if p not in problems]
    lines = [f"{path}: {len(problems)} invalid field(s):"]
    lines += [f"  - {loc}: {msg}" for loc, msg in problems]
    return "\n".join(lines)


def load_usecase(path: Path | str) -> UseCase:
    """Load and validate one use-case file (parsed once per version of the file in a process:
    every DAG file loads every config at every parse).

    Raises:
        ConfigError: the file is missing, is not YAML, or has invalid fields (all listed).
    """
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such use-case file") from None
    return _load_usecase(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _load_usecase(path: Path, mtime_ns: int, size: int) -> UseCase:
    """Parse and validate ``path``; the file's version is part of the cache key. UseCase objects are frozen."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such use-case file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        usecase = UseCase.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(path, err, raw)) from None
    if usecase.name != path.stem:
        raise ConfigError(f"{path}: name '{usecase.name}' must equal the file name '{path.stem}'")
    return usecase


def config_paths(configs_dir: Path | None = None) -> list[Path]:
    """The use-case files, sorted by name."""
    directory = configs_dir or settings.configs_dir()
    return sorted(directory.glob("*.yaml"))


def load_all(configs_dir: Path | None = None) -> list[UseCase]:
    """Load every use case in the configs folder; the first bad file raises."""
    return [load_usecase(p) for p in config_paths(configs_dir)]


@dataclass(frozen=True)
class ConfigScan:
    """The use cases of a configs folder that load, and the problems of the files that do not."""

    usecases: list[UseCase]
    errors: dict[Path, str]

    def error_report(self) -> str:
        """One message naming every bad file and its fields (empty when all files load)."""
        return "\n".join(self.errors.values())


def scan(configs_dir: Path | None = None) -> ConfigScan:
    """Load every use case that can be loaded; a bad file is reported, not raised.

    DAG files build their DAGs from ``scan().usecases``, so a typo in one use case's
    file leaves the other use cases' DAGs in place; ``dags/config_errors.py`` and
    ``mlops status`` report the bad file by name and field.
    """
    usecases, errors = [], {}
    for path in config_paths(configs_dir):
        try:
            usecases.append(load_usecase(path))
        except ConfigError as exc:
            errors[path] = str(exc)
    return ConfigScan(usecases, errors)


def get_usecase(name: str, configs_dir: Path | None = None) -> UseCase:
    """Load the use case called ``name``, with a clear error listing the known ones."""
    directory = configs_dir or settings.configs_dir()
    path = directory / f"{name}.yaml"
    if not path.exists():
        known = [p.stem for p in config_paths(directory)]
        raise ConfigError(f"unknown use case '{name}': no {path} (known: {', '.join(known) or 'none'})")
    return load_usecase(path)
