"""``mlops server up|down|status``: the compose file's services as processes on this machine.

Each process runs in its own session (process group), its output in
``$MLOPS_HOME/logs/<name>.log``; what was started is recorded in
``$MLOPS_HOME/server/processes.json`` (pid and start time, so a reused pid is
never mistaken for ours). ``up`` starts only what is not running, so running it
twice starts nothing the second time; ``down`` stops exactly what ``up``
started, their children included.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from mlops.server import compose, profile
from pipelines import settings
from pipelines.locks import file_lock


class ServerError(RuntimeError):
    """The profile could not be brought up; the message names the service and its log."""


@dataclasses.dataclass(frozen=True)
class Started:
    """One process ``up`` started."""

    name: str
    service: str
    pid: int
    created: float  # the process's start time (psutil: wall clock), for people and where ``ticks`` is unknown
    command: list[str]
    log: str
    # Its start in clock ticks since boot (Linux): tells it from a later process with the same pid. The wall-clock
    # start psutil derives from it moves whenever the wall clock is stepped against the time since boot (a paused
    # and resumed virtual machine: 23 s in one CI run), which made `up` and `down` take their own processes for others.
    ticks: int | None = None

    def alive(self) -> bool:
        return self.gone() is None

    def gone(self) -> str | None:
        """Why this process no longer runs (None: it runs), for messages."""
        import psutil

        try:
            process = psutil.Process(self.pid)
            created, status = process.create_time(), process.status()
        except psutil.NoSuchProcess:
            return f"pid {self.pid}: no such process"
        ticks = start_ticks(self.pid)
        if self.ticks is not None and ticks is not None:
            other = ticks != self.ticks
        else:
            other = abs(created - self.created) >= 1
        if other:
            return (
                f"pid {self.pid}: another process (started {created:.1f}, recorded {self.created:.1f}; "
                f"ticks since boot {ticks}, recorded {self.ticks})"
            )
        return f"pid {self.pid}: a zombie" if status == psutil.STATUS_ZOMBIE else None


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat``, field 22); None
    where there is no such file (not Linux) or no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # fields after the command name, which may hold ")"


def _state_path() -> Path:
    return profile.server_dir() / "processes.json"


def recorded() -> dict[str, Started]:
    path = _state_path()
    if not path.exists():
        return {}
    return {name: Started(**entry) for name, entry in json.loads(path.read_text()).items()}


def _record(processes: dict[str, Started]) -> None:
    path = _state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({name: dataclasses.asdict(p) for name, p in processes.items()}, indent=2))
    tmp.replace(path)


@contextlib.contextmanager
def _exclusive() -> Iterator[None]:
    """One ``up`` or ``down`` at a time on a state folder."""
    with file_lock(profile.server_dir() / ".lock"):
        yield


def _log_tail(path: str | Path, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _check_machine_services(variables: dict[str, str]) -> None:
    """PostgreSQL and Redis must be up: this machine runs them, ``up`` does not."""
    for name, host, port in (
        ("PostgreSQL", variables.get("POSTGRES_HOST"), variables.get("POSTGRES_PORT", "5432")),
        ("Redis", variables.get("REDIS_HOST"), variables.get("REDIS_PORT", "6379")),
    ):
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as exc:
            raise ServerError(f"{name} is not reachable at {host}:{port} ({exc}); start it first") from None


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _listener(port: int) -> str:
    """The process that listens on ``port``, as far as this user may see it."""
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return f"by pid {conn.pid}: {' '.join(psutil.Process(conn.pid).cmdline())[:200]}"
    except (psutil.Error, OSError):
        pass
    return "by a process this user cannot see"


def run_init() -> None:
    """``mlops server init`` in its own process, with the airflow-init service's environment."""
    logs = profile.logs_dir()
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{profile.INIT_SERVICE}.log"
    with open(log, "w") as out:
        done = subprocess.run(
            ["mlops", "server", "init"],
            env=profile.init_environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=settings.REPO_ROOT,
        )
    if done.returncode != 0:
        raise ServerError(f"{profile.INIT_SERVICE} failed (exit {done.returncode}); {log}:\n{_log_tail(log)}")


def _start(service: compose.Service, name: str) -> Started:
    import psutil

    log = profile.logs_dir() / f"{name}.log"
    command = profile.process_command(service, name)
    with open(log, "a") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} mlops server up: {' '.join(command[:3])} ...\n")
        out.flush()
        process = subprocess.Popen(
            command,
            env=profile.process_environment(service, name),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=settings.REPO_ROOT,
            start_new_session=True,
        )
    created = psutil.Process(process.pid).create_time()
    return Started(name, service.name, process.pid, created, command, str(log), start_ticks(process.pid))


def healthy(service: compose.Service, name: str, env: dict[str, str] | None = None, timeout: float = 20) -> bool:
    """Whether the service's own healthcheck (from the compose file) passes for this process
    (``env``: the process's environment, when the caller has it already)."""
    command = service.health_command()
    if command is None:
        return True
    env = env if env is not None else profile.process_environment(service, name)
    try:
        done = subprocess.run(command, env=env, capture_output=True, timeout=timeout)
    except (subprocess.TimeoutExpired, FileNotFoundError):
        return False
    return done.returncode == 0


# How often a healthcheck runs while a service starts: an HTTP probe costs nothing, a check
# that boots Airflow or Celery (`airflow jobs check`, `celery inspect ping`) costs seconds of
# CPU, so it waits for the process to have imported and then runs every few seconds.
_CHEAP_EVERY, _COSTLY_AFTER, _COSTLY_EVERY = 1.0, 10.0, 5.0


def _costly(service: compose.Service) -> bool:
    command = service.health_command() or []
    return not command or command[0] not in ("curl", "pg_isready", "redis-cli")


def _wait_healthy(services: dict[str, compose.Service], started: dict[str, Started], timeout: float) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pending = dict(started)
    t0 = time.monotonic()
    deadline = t0 + timeout
    due = {name: t0 + (_COSTLY_AFTER if _costly(services[p.service]) else 0) for name, p in pending.items()}
    envs = {name: profile.process_environment(services[p.service], name) for name, p in pending.items()}
    with ThreadPoolExecutor(max_workers=max(1, len(pending))) as pool:
        while pending:
            for name, proc in pending.items():
                if not proc.alive():
                    raise ServerError(f"{name} exited while starting; {proc.log}:\n{_log_tail(proc.log)}")
            now = time.monotonic()
            names = [n for n in pending if due[n] <= now]
            checks = pool.map(lambda n: healthy(services[pending[n].service], n, envs[n]), names)
            for name, ok in zip(names, checks, strict=True):
                if ok:
                    print(f"  {name}: healthy after {time.monotonic() - t0:.0f}s", flush=True)
                    del pending[name]
                else:
                    every = _COSTLY_EVERY if _costly(services[started[name].service]) else _CHEAP_EVERY
                    due[name] = time.monotonic() + every
            if pending and time.monotonic() > deadline:
                names = ", ".join(pending)
                raise ServerError(f"not healthy after {timeout:.0f}s: {names}; logs in {profile.logs_dir()}")
            if pending:
                time.sleep(max(0.2, min(due[n] for n in pending) - time.monotonic()))


def up(profiles: tuple[str, ...] = (), timeout: float = 240) -> dict[str, Started]:
    """Start what is not running, after the set-up step; wait until each is healthy."""
    with _exclusive():
        variables = profile.variables()
        _check_machine_services(variables)
        services = {s.name: s for s in profile.process_services(profiles)}
        current = {name: p for name, p in recorded().items() if p.alive()}
        wanted = [(s, name) for s in services.values() for name in profile.replica_names(s)]
        missing = [(s, name) for s, name in wanted if name not in current]
        if not missing:
            print(f"already running: {', '.join(current)} (state {settings.mlops_home()})")
            return current
        port = int(variables.get("AIRFLOW_API_PORT", "8080"))
        if "airflow-apiserver" not in current and _port_in_use(port):
            recorded_api = recorded().get("airflow-apiserver")
            seen = f"; the recorded API server's {recorded_api.gone()}" if recorded_api else ""
            raise ServerError(
                f"port {port} is in use ({_listener(port)}; another Airflow? `make ui`?): set AIRFLOW_API_PORT{seen}"
            )
        t0 = time.perf_counter()
        print(f"set-up ({profile.INIT_SERVICE}): databases, Airflow DB, admin user, mlops init ...", flush=True)
        run_init()
        print(f"  done in {time.perf_counter() - t0:.0f}s", flush=True)
        started = {}
        try:
            for service, name in missing:
                started[name] = _start(service, name)
                _record({**current, **started})
            print(f"started {', '.join(started)}; waiting for their healthchecks ...", flush=True)
            _wait_healthy(services, started, timeout)
        except BaseException:
            _stop(started)
            _record(current)
            raise
        print(f"up in {time.perf_counter() - t0:.0f}s", flush=True)
        return {**current, **started}


def _tree(pid: int) -> list:
    import psutil

    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _stop(processes: dict[str, Started], grace: float = 30) -> None:
    """SIGTERM each process group and every descendant; SIGKILL what is left after ``grace`` seconds."""
    import psutil

    targets = []
    for proc in processes.values():
        if not proc.alive():
            continue
        tree = _tree(proc.pid)
        targets += tree
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.terminate()
    _, alive = psutil.wait_procs(targets, timeout=grace)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=10)


def down(grace: float = 30) -> list[str]:
    """Stop what ``up`` started; return their names."""
    with _exclusive():
        processes = recorded()
        stopped = [name for name, p in processes.items() if p.alive()]
        _stop(processes, grace)
        _state_path().unlink(missing_ok=True)
        return stopped


def status(check_health: bool = True) -> dict[str, dict]:
    """Each process ``up`` started: pid, alive, and (unless not asked) whether its healthcheck passes now."""
    started = recorded()
    if not started:  # nothing to check (and no env file to write into a state that never ran the profile)
        return {}
    services = profile.services()
    out = {}
    for name, proc in started.items():
        alive = proc.alive()
        out[name] = {
            "pid": proc.pid,
            "running": alive,
            # A service the compose file no longer declares has no healthcheck to pass.
            "healthy": alive and (_healthy_now(services.get(proc.service), proc.name) if check_health else None),
            "log": proc.log,
        }
    return out


def _healthy_now(service: compose.Service | None, name: str) -> bool:
    return service is not None and healthy(service, name)
