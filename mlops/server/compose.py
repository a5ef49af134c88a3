"""``docker-compose.yaml`` read the way Docker Compose reads it: the one source of the server profile.

``make up`` runs the services this file declares, with the commands, environment
and healthchecks it declares, as processes; nothing about them is written twice.
Variables are interpolated as the Compose specification defines (``${VAR}``,
``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``,
``${VAR:+alternative}``, ``$VAR`` and ``$$`` for a literal ``$``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines import settings


class ComposeError(ValueError):
    """The compose file cannot be used: a required variable is missing, or a value is malformed."""


def compose_path() -> Path:
    return settings.REPO_ROOT / "docker-compose.yaml"


@dataclasses.dataclass(frozen=True)
class Service:
    """One service of the compose file, after interpolation."""

    name: str
    command: tuple[str, ...]
    environment: dict[str, str]
    healthcheck: tuple[str, ...]  # the `test` of its healthcheck ("CMD", ...) or ("CMD-SHELL", "...")
    replicas: int
    profiles: tuple[str, ...]
    image: str | None
    depends_on: tuple[str, ...]

    def health_command(self) -> list[str] | None:
        """The healthcheck as a command line (CMD-SHELL runs in ``sh -c``, as in a container)."""
        if not self.healthcheck or self.healthcheck[0] == "NONE":
            return None
        kind, *rest = self.healthcheck
        if kind == "CMD-SHELL":
            return ["sh", "-c", " ".join(rest)]
        if kind == "CMD":
            return list(rest)
        raise ComposeError(f"service {self.name}: healthcheck test must start with CMD or CMD-SHELL, got {kind!r}")


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, variables: Mapping[str, str], where: str = "") -> str:
    """``text`` with its variables substituted as Compose does.

    Raises:
        ComposeError: a ``${VAR:?message}`` variable is unset or empty (``?``: unset), or a
            ``$`` starts something that is not a variable.
    """

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("named")
        op, arg = match.group("op"), match.group("arg") or ""
        value = variables.get(name)
        unset_or_empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset_or_empty else value
        if op in (":?", "?"):
            if unset_or_empty:
                raise ComposeError(f"{where}: required variable {name} is missing: {arg or 'set it'}")
            return value
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return value or ""

    out = _VARIABLE.sub(substitute, text)
    if "${" in _VARIABLE.sub("", text):
        raise ComposeError(f"{where}: malformed variable in {text!r}")
    return out


def _interpolated(value: Any, variables: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):
        return interpolate(value, variables, where)
    if isinstance(value, list):
        return [_interpolated(v, variables, where) for v in value]
    if isinstance(value, dict):
        return {k: _interpolated(v, variables, f"{where}.{k}") for k, v in value.items()}
    return value


def load_raw(path: Path | None = None) -> dict[str, Any]:
    """The compose file as YAML, anchors and ``<<`` merges resolved, variables not yet substituted."""
    import yaml

    return yaml.safe_load((path or compose_path()).read_text())


def load(variables: Mapping[str, str], path: Path | None = None) -> dict[str, Service]:
    """Every service of the compose file, its values interpolated with ``variables``."""
    raw = load_raw(path)
    services = {}
    for name, spec in raw["services"].items():
        spec = _interpolated(spec, variables, f"services.{name}")
        environment = spec.get("environment") or {}
        if isinstance(environment, list):  # the KEY=value list form
            environment = dict(item.split("=", 1) for item in environment)
        command = spec.get("command") or []
        if isinstance(command, str):
            import shlex

            command = shlex.split(command)
        replicas = (spec.get("deploy") or {}).get("replicas", 1)
        try:
            replicas = int(replicas)
        except ValueError:
            raise ComposeError(f"services.{name}.deploy.replicas: expected a whole number, got {replicas!r}") from None
        depends = spec.get("depends_on") or {}
        services[name] = Service(
            name=name,
            command=tuple(str(c) for c in command),
            environment={k: "" if v is None else str(v) for k, v in environment.items()},
            healthcheck=tuple((spec.get("healthcheck") or {}).get("test") or ()),
            replicas=replicas,
            profiles=tuple(spec.get("profiles") or ()),
            image=spec.get("image"),
            depends_on=tuple(depends),
        )
    return services


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file (comments and blank lines skipped, one level of quotes removed)."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ComposeError(f"{path}:{number}: expected KEY=value, got {line!r}")
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip().removeprefix("export ").strip()] = value
    return values
