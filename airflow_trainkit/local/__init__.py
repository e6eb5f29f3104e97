"""Run a DAG file on this machine with ``dag.test()``: its own Airflow home and sqlite database, a
line per task, the full log in a file. ``trainkit dag test`` and ``trainkit demo`` use it."""
