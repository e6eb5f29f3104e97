"""The documentation site's sources: every public module is in the API reference once, every page is
in the site, and example code is included from example_dags/, never copied. The build itself (strict:
a broken include, link or page fails) is ``./run docs``, which .ci/run runs."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def _conf():
    """docs/conf.py as a module: its functions list the modules the API pages document."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("trainkit_docs_conf", DOCS / "conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_documents_every_public_module_once() -> None:
    conf = _conf()
    pages = {}
    for page in (DOCS / "api").glob("*.md"):
        found = re.findall(r"^<!-- api-modules: (.+) -->$", page.read_text(), flags=re.M)
        if found:
            pages[page.stem] = [entry for line in found for entry in line.split()]
    modules = conf.public_modules()
    assert "airflow_trainkit.trainers.xgboost" in modules and "airflow_trainkit._compat" not in modules
    for module in modules:
        homes = [name for name, entries in pages.items() if conf.covered(entries, module)]
        assert len(homes) == 1, (module, homes)
    for name, entries in pages.items():
        for entry in entries:
            assert any(conf.covered([entry], m) for m in modules), (name, entry)


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
