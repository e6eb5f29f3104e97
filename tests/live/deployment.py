"""A real Airflow deployment for tests: api-server, scheduler (LocalExecutor), dag-processor and
triggerer as separate processes on sqlite, on a free loopback port, in a home of its own.

``dag.test()`` runs triggers inline and hides what breaks in production; this does not.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from trainkit_testing import free_port

COMPONENTS = ["api-server", "scheduler", "dag-processor", "triggerer"]


class Deployment:
    def __init__(self, home: Path, dag_files: list[Path], extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.dags = home / "dags"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.dags.mkdir(parents=True, exist_ok=True)
        for path in dag_files:  # DAG files, and folders they read (e.g. data contracts)
            if path.is_dir():
                shutil.copytree(path, self.dags / path.name)
            else:
                shutil.copy(path, self.dags / path.name)
        airflow_bin = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            "PATH": f"{airflow_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            # Workers reach the execution API only through this URL: it must match the port.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "TRAINKIT_HOME": str(home / "trainkit"),
            **(extra_env or {}),
        }
        self.env.pop("TRAINKIT_ONPREM_ROOT", None)
        self.env.pop("TRAINKIT_TRIGGER_SETTLE_SECONDS", None)  # the real hold, as deployed

    def start(self, timeout: float = 600) -> None:
        subprocess.run(["airflow", "db", "migrate"], env=self.env, check=True, capture_output=True)
        for name in COMPONENTS:
            self._spawn(name)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"airflow {name} exited: {self.log_tail(name)}")
            try:
                if self.get("/api/v2/monitor/health")["triggerer"]["status"] == "healthy":
                    return
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(2)
        raise TimeoutError(f"the deployment was not ready within {timeout} s")

    def _spawn(self, name: str) -> None:
        args = ["airflow", name] + (["--port", str(self.port)] if name == "api-server" else [])
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - kept for the process's life
        self.processes[name] = subprocess.Popen(
            args,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill(self, name: str) -> None:
        """SIGKILL one component with everything it started (as a crashed host would)."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)

    def restart(self, name: str) -> None:
        """Start a killed component again, as its supervisor (systemd, Kubernetes) would."""
        self._spawn(name)

    def stop(self) -> None:
        for process in self.processes.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.home / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def request(self, method: str, path: str, body: Any = None, attempts: int = 6) -> Any:
        """One REST call; a 5xx is tried again (the api-server answers 500 while sqlite is locked by
        the scheduler, with many runs side by side). A POST tried again after a 5xx may meet what
        its first try did: a 409 then means done."""
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(attempts):
            req = urllib.request.Request(
                self.base + path, data=data, method=method, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(req, timeout=60) as response:
                    return json.loads(response.read() or b"null")
            except urllib.error.HTTPError as err:
                if err.code == 409 and attempt > 0 and method == "POST":
                    return None
                if err.code < 500 or attempt == attempts - 1:
                    raise
            time.sleep(2 * (attempt + 1))
        raise AssertionError("unreachable")

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def wait_for_dag(self, dag_id: str, timeout: float = 300) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
                return
            except urllib.error.HTTPError as err:
                if err.code != 404:
                    raise
            time.sleep(3)
        raise TimeoutError(f"DAG {dag_id} was not parsed within {timeout} s")

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> None:
        self.request(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}},
        )

    def task(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def wait_task(
        self, dag_id: str, run_id: str, task_id: str, states: set[str], timeout: float = 300
    ) -> list[str]:
        """Wait until the task is in one of ``states``; returns every state seen on the way."""
        seen: list[str] = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            state = str(self.task(dag_id, run_id, task_id).get("state"))
            if not seen or seen[-1] != state:
                seen.append(state)
            if state in states:
                return seen
            time.sleep(1)
        raise TimeoutError(f"{dag_id}/{run_id}/{task_id} never reached {states}; seen {seen}")

    def clear(self, dag_id: str, run_id: str, task_id: str) -> None:
        self.request(
            "POST",
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            {
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": [task_id],
                "only_failed": False,
                "reset_dag_runs": True,
            },
        )

    def mark(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        self.request(
            "PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", {"new_state": state}
        )
