"""Start a deployment for a group of the fault matrix's cases, with their backends (importable,
unlike conftest)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deployment import Deployment
from fault_backends import row
from fault_matrix import LiveBackend, write_dags
from fault_scenarios import BY_NAME

REPO = Path(__file__).resolve().parents[2]
Pairs = list[tuple[str, str]]


@contextmanager
def running_deployment(
    home: Path, pairs: Pairs, *, demo: bool
) -> Iterator[tuple[Deployment, dict[str, LiveBackend]]]:
    """A deployment with the DAGs of ``pairs`` (backend, scenario), their backends started first,
    and the demo and live tuning DAGs when ``demo``; everything is stopped on the way out."""
    examples = REPO / "example_dags"
    dag_files = [Path(__file__).parent / "dags" / "fault_matrix.py"]
    if demo:
        dag_files += [examples / "trainkit_demo.py", examples / "contracts"]
        dag_files.append(Path(__file__).parent / "dags" / "live_tuning.py")
    # Blocking cases hold a worker slot each while they wait: room for every case of the group.
    env = {"TRAINKIT_ONPREM_GPUS": "none", "AIRFLOW__CORE__PARALLELISM": "32"}
    backends = {name: row(name) for name in dict.fromkeys(b for b, _ in pairs)}
    started: list[LiveBackend] = []
    deployment = None
    try:
        for name, backend in backends.items():
            backend.start(home / f"backend-{name}")
            started.append(backend)
            env.update(backend.deployment_env(home))
        deployment = Deployment(home, dag_files, env)
        write_dags(deployment.dags, [(backends[b], BY_NAME[s]) for b, s in pairs])
        deployment.start()
        yield deployment, backends
    except Exception:
        if deployment is not None:
            for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
                print(f"--- {name} ---\n{deployment.log_tail(name)}")
        raise
    finally:
        if deployment is not None:
            deployment.stop()
        for backend in started:
            backend.stop()
