"""The documentation site's sources: every public module is in the API reference, every page is in
the site, and example code is included from example_dags/, never copied. The build itself (strict:
a broken include, link or page fails) is ``./run docs``, which .ci/run runs."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def public_modules() -> set[str]:
    modules = set()
    for path in (REPO / "airflow_trainkit").rglob("*.py"):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if not any(part.startswith("_") for part in parts):
            modules.add(".".join(parts))
    return modules


def test_api_reference_documents_every_public_module() -> None:
    documented = set()
    for page in (DOCS / "api").glob("*.md"):
        documented |= set(re.findall(r"^\.\. automodule:: (\S+)$", page.read_text(), flags=re.M))
    assert documented == public_modules()


def test_every_page_is_in_a_table_of_contents() -> None:
    listed = set()
    for page in [DOCS / "index.md", DOCS / "api" / "index.md"]:
        for block in re.findall(r"```\{toctree\}\n(.*?)```", page.read_text(), flags=re.S):
            prefix = "api/" if page.parent.name == "api" else ""
            listed |= {
                prefix + line.strip() for line in block.splitlines() if line.strip() and ":" not in line
            }
    pages = {str(p.relative_to(DOCS).with_suffix("")) for p in DOCS.rglob("*.md")} - {"index"}
    assert pages == listed


def test_example_code_is_included_from_the_example_dags_with_existing_markers() -> None:
    """Each literalinclude names a file of example_dags/ and markers that file has."""
    includes = 0
    for page in DOCS.rglob("*.md"):
        text = page.read_text()
        for path, start, end in re.findall(
            r"```\{literalinclude\} (\S+)\n(?:.*\n)*?:start-after: \"(.+)\"\n:end-before: \"(.+)\"\n", text
        ):
            source = (page.parent / path).resolve()
            assert source.parent == REPO / "example_dags", (page.name, path)
            code = source.read_text()
            assert f"# {start}" in code and f"# {end}" in code, (page.name, path, start)
            includes += 1
    assert includes >= 8
