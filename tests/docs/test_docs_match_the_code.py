"""What the docs say about the code is what the code does: the demo's tasks, the thresholds and scores
the registry page quotes, the drift page's example of bad text, the exit codes of ``trainkit contract
validate``, and every file the repository cites."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
EXAMPLES = REPO / "example_dags"


def section(page: str, heading: str) -> str:
    """The text of ``page`` from ``heading`` to the next heading of the same or a higher level."""
    text = (DOCS / page).read_text()
    level = heading.split(" ")[0]
    start = text.index(heading + "\n")
    body = start + len(heading) + 1
    end = re.search(rf"^#{{1,{len(level)}}} ", text[body:], flags=re.M)
    return text[start : body + end.start()] if end else text[start:]


def test_getting_started_walks_through_every_task_of_the_demo() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES / "trainkit_demo.py"))
    tasks = list(bag.dags["trainkit_demo"].task_dict)
    text = section("getting-started.md", "## Run the demo")
    steps = re.findall(r"^\d+\. `(\w+)`", text, flags=re.M)
    assert sorted(steps) == sorted(tasks), steps


def _promote_thresholds(path: Path) -> dict:
    """The literal ``thresholds`` of the DAG's PromoteModelOperator (a dict, or a module-level name)."""
    tree = ast.parse(path.read_text())
    names = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "PromoteModelOperator":
            (value,) = [k.value for k in node.keywords if k.arg == "thresholds"]
            return ast.literal_eval(names[value.id] if isinstance(value, ast.Name) else value)
    raise AssertionError(f"no PromoteModelOperator in {path}")


def test_registry_quotes_the_thresholds_the_demo_and_examples_use() -> None:
    text = section("registry.md", "## PromoteModelOperator: the quality gate")
    paragraph = text[text.index("**The demo's thresholds.**") :]
    quoted = ast.literal_eval(re.search(r"`(\{[^`]*\})`", paragraph).group(1))
    for dag_file in ("trainkit_demo.py", "example_register_and_promote.py", "retrain_on_drift.py"):
        assert _promote_thresholds(EXAMPLES / dag_file) == quoted, dag_file
    from airflow_trainkit.registry.gate import DEFAULT_THRESHOLDS

    defaults = DEFAULT_THRESHOLDS["classification"]
    assert f"`log_loss <= {defaults['log_loss']}`" in paragraph


def test_no_page_says_a_part_is_missing_that_is_there() -> None:
    for page in sorted(DOCS.glob("*.md")):
        assert "not on this branch" not in page.read_text(), page.name


def test_registry_quotes_the_scores_the_demo_model_reaches(tmp_path: Path) -> None:
    """The demo's table and hyperparameters, through the trainer, as the demo's train task runs them."""
    from airflow_trainkit.demo.data import write_churn_dataset
    from airflow_trainkit.trainers.contract import TrainerEnv
    from airflow_trainkit.trainers.xgboost import build_parser, resolve_config, train

    paragraph = section("registry.md", "## PromoteModelOperator: the quality gate")
    match = re.search(r"AUC-ROC of about ([\d.]+) and a log-loss of about ([\d.]+)", paragraph)
    assert match, "the paragraph on the demo's thresholds quotes no scores"
    data = write_churn_dataset(tmp_path / "churn.parquet", rows=5000, seed=7)
    env = TrainerEnv(
        inputs={"train": str(data)}, hyperparameters=_demo_hyperparameters(), output_uri=str(tmp_path / "out")
    )
    metrics = train(resolve_config(build_parser().parse_args([]), env))["metrics"]
    assert metrics["auc_roc"] == pytest.approx(float(match.group(1)), abs=0.015)
    assert metrics["log_loss"] == pytest.approx(float(match.group(2)), abs=0.015)


def _demo_hyperparameters() -> dict:
    """The demo's training spec's hyperparameters, read from the DAG file (not imported)."""
    tree = ast.parse((EXAMPLES / "trainkit_demo.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "SPEC":
            for key, value in zip(node.value.keys, node.value.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "hyperparameters":
                    return ast.literal_eval(value)
    raise AssertionError("no SPEC hyperparameters in trainkit_demo.py")


def test_drift_page_example_of_text_in_a_numeric_column_is_refused_from_csv(tmp_path: Path) -> None:
    from airflow_trainkit.drift.check import run_check
    from airflow_trainkit.drift.config import DriftConfig
    from airflow_trainkit.drift.tables import open_table

    text = section("drift.md", "## Result, report and on_failure")
    example = re.search(r'a numeric column holding text \(`"([^"`]+)"`\)', text).group(1)
    rows = "\n".join(f"{i},{i % 7}" for i in range(200))
    (tmp_path / "reference.csv").write_text(f"id,age\n{rows}\n")
    (tmp_path / "current.csv").write_text(f"id,age\n{rows}\n200,{example}\n")
    with pytest.raises(
        ValueError,
        match=rf"column 'age' is numeric in the reference but the current window holds 1 non-numeric value\(s\), e.g. '{re.escape(example)}'",
    ):
        run_check(
            reference=open_table(str(tmp_path / "reference.csv")),
            current=open_table(str(tmp_path / "current.csv")),
            config=DriftConfig(columns=["age"]),
        )


def test_contract_validate_exit_codes_are_the_documented_ones(tmp_path: Path, capsys) -> None:
    from airflow_trainkit.cli import main
    from airflow_trainkit.contracts.cli import VALIDATE_EXIT_CODES
    from airflow_trainkit.demo.data import make_churn_frame

    table = section("validation.md", "## Start from an inferred contract")
    documented = {
        int(code): meaning for code, meaning in re.findall(r"^\| `(\d)` \| (.+) \|$", table, flags=re.M)
    }
    assert sorted(documented) == [0, 1, 2, 3]
    helped = {int(code) for code in re.findall(r"^  (\d)  ", VALIDATE_EXIT_CODES, flags=re.M)}
    assert helped == set(documented)

    contract = str(EXAMPLES / "contracts" / "churn.yaml")
    good = make_churn_frame(5000, seed=7)
    good.to_csv(tmp_path / "good.csv", index=False)
    good.assign(age=-5.0).to_csv(tmp_path / "bad.csv", index=False)
    cases = {
        0: [str(tmp_path / "good.csv"), contract],
        3: [str(tmp_path / "bad.csv"), contract],
        1: [str(tmp_path / "missing.csv"), contract],
        2: [str(tmp_path / "good.csv"), str(tmp_path / "no-such-contract.yaml")],
    }
    for code, args in cases.items():
        assert main(["contract", "validate", *args]) == code, (code, capsys.readouterr())
    assert "keeps the contract" in documented[0] and "cannot be read" in documented[1]
    assert "contract" in documented[2] and "breaks the contract" in documented[3]


# A path inside the repository as prose cites it: a top-level folder of ours and what follows, or a
# capitalised name ending in .md (README.md, ...).
CITED = re.compile(
    r"(?<![\w/.:-])((?:\.ci|airflow_trainkit|benchmarks|docs|example_dags|scripts|tests)/[\w./-]*[\w/]"
    r"|[A-Z][A-Z0-9.-]*[A-Z0-9]\.md)\b"
)


@pytest.mark.integration  # starts a process
def test_every_file_the_repository_cites_exists() -> None:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    missing = []
    for name in listed.split():
        path = REPO / name
        if path.suffix not in (".py", ".md", ".toml", ".yaml", ".yml", "") or not path.is_file():
            continue
        for match in CITED.finditer(path.read_text(errors="replace")):
            cited = match.group(1).rstrip("/.")
            if not (REPO / cited).exists():
                missing.append(f"{name} cites {cited}")
    assert missing == []
