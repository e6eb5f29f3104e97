"""Run one DAG of the configured DAGs folder with ``dag.test()``; exit 0 only if the run succeeded.

``python -m airflow_trainkit.demo.run_dag DAG_ID``; prints each task's final state.
"""

from __future__ import annotations

import json
import sys


def main(dag_id: str) -> int:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()
    if dag_id not in bag.dags:
        print(f"no DAG {dag_id!r} in the DAGs folder; import errors: {bag.import_errors}", file=sys.stderr)
        return 2
    run = bag.dags[dag_id].test()
    state = str(getattr(run.state, "value", run.state))
    tasks = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
    print(json.dumps({"dag_id": dag_id, "run_id": run.run_id, "state": state, "tasks": tasks}, indent=1))
    return 0 if state == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
