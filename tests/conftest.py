"""Shared test set-up: one Airflow home with a migrated sqlite DB for the whole session.

The environment is set here, at import, because Airflow reads it when first imported.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
_HOME = Path(tempfile.mkdtemp(prefix="trainkit-tests-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "GX_ANALYTICS_ENABLED": "False",
        "MLFLOW_ENABLE_TELEMETRY": "false",
        "TRAINKIT_ONPREM_GPUS": "none",
        # No hold before a training trigger's event (it guards a race of a real scheduler; the live
        # deployment keeps the default).
        "TRAINKIT_TRIGGER_SETTLE_SECONDS": "0",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    # Added here, not in pyproject.toml: resolving the warning classes imports Airflow, which must not
    # happen before the environment above is set.
    from allowed_warnings import filter_lines

    for line in filter_lines():
        config.addinivalue_line("filterwarnings", line)


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated metadata DB, made once per session (``dag.test()`` needs it)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    return airflow_home / "airflow.db"


@pytest.fixture
def onprem_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh on-prem job root (and trainkit home) per test; jobs still running at its end are
    stopped, so none outlives the test that started it."""
    root = tmp_path / "jobs"
    monkeypatch.setenv("TRAINKIT_HOME", str(tmp_path / "trainkit"))
    monkeypatch.setenv("TRAINKIT_ONPREM_ROOT", str(root))
    yield root
    from trainkit_testing import settled

    from airflow_trainkit.backends.onprem import OnPremBackend

    monkeypatch.setenv("TRAINKIT_ONPREM_ROOT", str(root))  # the test may have pointed it elsewhere
    backend = OnPremBackend()
    for job_file in sorted(root.glob("*/job.json")):
        name = job_file.parent.name
        if backend.describe(name).phase.active:
            backend.stop(name, reason="the test that started it ended")
            settled(backend, name, timeout=30)


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    """``os.umask`` for one test (processes it starts inherit it); the umask is restored afterwards."""
    saved = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(saved)


# -- tiers -----------------------------------------------------------------------------------------
# unit: no process, no server, no job (the selection for local work: `./run test -m unit`);
# integration: real servers, jobs, engines, dag.test(); live: a real Airflow deployment. The tier follows from
# where a test lives and which fixtures it uses; a test the rules call unit that starts a process or
# a server anyway fails, saying how to mark it, so a new test cannot land in the wrong tier.

# Fixtures that start a process, a server or a job.
INTEGRATION_FIXTURES = {
    "airflow_db",
    "onprem_root",
    "mlflow_server",
    "server_conn",
    "model_folders",
    "auth_server",
    "moto_endpoint",
    "fake_server",
    "aws_env",
    "vertex_server",
    "gcp_env",
    "price_api",
    "price_server",
}
LIVE_FOLDERS = ("live",)
# Places every test of which is an integration test: folders whose tests talk to a cloud's wire fake
# on loopback or to real sshd hosts or a real Ray cluster, and modules whose tests drive a real engine (GX, Evidently) on real data.
INTEGRATION_PLACES = (
    "backends/azure_ml",
    "backends/onprem_ssh",
    "backends/ray",
    "backends/sagemaker",
    "backends/vertex_ai",
    "contracts/test_contracts_engine.py",
    "contracts/test_contracts_sql.py",
    "drift/test_drift_report.py",
    "operators/test_drift_operator.py",
)


def _place(path: Path) -> str:
    return path.relative_to(REPO / "tests").as_posix()


def _in(place: str, places: tuple[str, ...]) -> bool:
    return any(place == p or place.startswith(p + "/") for p in places)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """``-m unit`` does not even import what the rules above make integration or live."""
    if config.option.markexpr.strip() != "unit" or not collection_path.is_relative_to(REPO / "tests"):
        return None
    place = _place(collection_path)
    return True if _in(place, INTEGRATION_PLACES + LIVE_FOLDERS) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _leave_out_fault_matrix(config, items)
    for item in items:
        place = _place(Path(str(item.path)))
        if _in(place, LIVE_FOLDERS):
            item.add_marker(pytest.mark.live)
        if item.get_closest_marker("live"):
            continue
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("integration") is None and (
            fixtures & INTEGRATION_FIXTURES or _in(place, INTEGRATION_PLACES)
        ):
            item.add_marker(pytest.mark.integration)
        if item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)


def _leave_out_fault_matrix(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The live fault matrix's cases beyond its ``ci`` subset run only when asked (``-m faults``):
    all of them take far longer than CI's budget."""
    if "faults" in config.option.markexpr:
        return
    left_out = [i for i in items if i.get_closest_marker("faults") and not i.get_closest_marker("ci")]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [i for i in items if i not in left_out]


class _NotUnit(Exception):
    pass


# Commands libraries run to learn about the machine (platform.processor() and .architecture(),
# ctypes.util.find_library):
# not processes a test starts.
_SYSTEM_PROBES = {"uname", "file", "ldconfig", "ldconfig.real", "gcc", "cc", "ld", "objdump"}


@contextlib.contextmanager
def _starting_nothing(item: pytest.Item) -> Iterator[None]:
    """Within a unit test (its fixtures of every scope included), starting a process or opening a
    server fails, naming what was started."""
    if item.get_closest_marker("unit") is None:
        yield
        return
    import multiprocessing.process
    import socket

    def refuse(what: str) -> None:
        raise _NotUnit(
            f"{item.nodeid} {what}: a test that starts a process, a server or a job is an "
            "integration test. Use a fixture that says so (INTEGRATION_FIXTURES in tests/conftest.py) "
            "or mark it @pytest.mark.integration."
        )

    real_execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def no_process(self: Any, args: Any, *rest: Any, **kwargs: Any) -> Any:
        program = Path(str(args[0] if isinstance(args, (list, tuple)) else str(args).split()[0])).name
        if program in _SYSTEM_PROBES:
            return real_execute_child(self, args, *rest, **kwargs)
        refuse(f"started a process {args!r}")

    def no_fork(self: Any) -> None:
        refuse("started a multiprocessing process")

    def no_server(self: socket.socket, *backlog: Any) -> None:
        refuse(f"opened a server on {self.getsockname()!r}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", no_process)
        patch.setattr(multiprocessing.process.BaseProcess, "start", no_fork)
        patch.setattr(socket.socket, "listen", no_server)
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    with _starting_nothing(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    with _starting_nothing(item):
        return (yield)


# -- what a test changes, it does not leave behind ------------------------------------------------


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    """Environment variables, the backend registries and the root logger's handlers and level are
    as they were after every test (a trainer run in-process adds a stdout handler, for one)."""
    import logging

    import airflow_trainkit.training.backend as backends

    for name in backends.available_backends():  # a backend module registers once, when imported:
        backends.get_backend(name)  # registered before the snapshot, so a restore cannot drop it
    environ = dict(os.environ)
    registry, shared = dict(backends._REGISTRY), dict(backends._SHARED)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for key in set(os.environ) - set(environ):
        del os.environ[key]
    os.environ.update(environ)
    backends._REGISTRY.clear()
    backends._REGISTRY.update(registry)
    with backends._SHARED_LOCK:
        backends._SHARED.clear()
        backends._SHARED.update(shared)
    root.handlers[:] = handlers
    root.setLevel(level)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The random order's seed, also under -q (pytest-randomly prints it only in the header)."""
    seed = getattr(config.option, "randomly_seed", None)
    if seed is not None and config.pluginmanager.hasplugin("randomly"):
        terminalreporter.write_line(f"random order: --randomly-seed={seed} repeats it")
