"""Sphinx configuration of the documentation site. Build it with ``./run docs`` (strict: a warning,
such as an include whose file or marker is missing, fails the build)."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
sys.path.insert(0, str(REPO))  # the API reference imports the package from this checkout
# Importing Airflow writes a default airflow.cfg into its home: a throwaway one, not ~/airflow.
if "AIRFLOW_HOME" not in os.environ:
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="trainkit-docs-airflow-")
    atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

project = "airflow-trainkit"
author = "the airflow-trainkit authors"
copyright = "2026, the airflow-trainkit authors"

extensions = [
    "myst_parser",  # the pages are Markdown that also reads well on GitHub
    "sphinx.ext.autodoc",  # the API reference, from the docstrings
    "sphinx.ext.viewcode",  # a [source] link from each documented object
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

# Headings up to ### get anchors, so links such as trainer.md#imbalanced-classes resolve.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# Each object is documented once, in the module that defines it, not again where a package re-exports it.
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"  # types live in the annotations; show them with each parameter

html_theme = "furo"  # no fonts, scripts or images fetched from the internet, at build time or when read
html_title = "airflow-trainkit"
html_static_path: list[str] = []
html_show_sourcelink = False

# A page may still include example code with the snippet syntax of pymdownx
# (--8<-- "<file>:<name>" in a code fence): it is read as the literalinclude of the code
# between that file's "# [START name]" and "# [END name]" markers, so a missing file or marker fails
# the build as any broken include does.
_SNIPPET = re.compile(r'^```(\w*)\n--8<-- "([^":]+):([^"]+)"\n```$', re.M)


def _snippets_as_includes(app, docname: str, source: list[str]) -> None:
    up = "../" * (docname.count("/") + 1)  # from the page's folder back to the repository

    def include(match: re.Match) -> str:
        language, path, name = match.group(1) or "python", match.group(2), match.group(3)
        return (
            f"```{{literalinclude}} {up}{path}\n:language: {language}\n"
            f':start-after: "[START {name}]"\n:end-before: "[END {name}]"\n:dedent:\n```'
        )

    source[0] = _SNIPPET.sub(include, source[0])


# An API page names what it covers in a comment, "<!-- api-modules: airflow_trainkit.costs.* ... -->"
# (NAME.* is NAME and every module under it; a plain NAME is that module only). The build lists the
# public modules it finds there, one automodule each: a new module needs no edit of the page.
_API_MODULES = re.compile(r"^<!-- api-modules: (.+) -->$", re.M)


def public_modules() -> list[str]:
    """Every module of the package whose dotted name has no part starting with ``_``."""
    modules = []
    for path in sorted((REPO / "airflow_trainkit").rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if not any(part.startswith("_") for part in parts):
            modules.append(".".join(parts))
    return sorted(modules)


def covered(entries: list[str], module: str) -> bool:
    """Whether an ``api-modules`` list covers ``module``."""
    return any(
        module == entry.removesuffix(".*") or (entry.endswith(".*") and module.startswith(entry[:-1]))
        for entry in entries
    )


def _api_modules(app, docname: str, source: list[str]) -> None:
    def listing(match: re.Match) -> str:
        entries = match.group(1).split()
        blocks = [
            f"## `{module}`\n\n```{{eval-rst}}\n.. automodule:: {module}\n```\n"
            for module in public_modules()
            if covered(entries, module)
        ]
        return "\n".join(blocks)

    source[0] = _API_MODULES.sub(listing, source[0])


def setup(app):
    app.connect("builder-inited", _import_the_package_first)
    app.connect("source-read", _snippets_as_includes)
    app.connect("source-read", _api_modules)
    return {"parallel_read_safe": True}


def _import_the_package_first(app) -> None:
    """Import every public module before autodoc reads one.

    Documenting a pydantic model, autodoc writes the annotations it finds in the source of each
    class of its MRO into their ``__annotations__``, pydantic's ``BaseModel`` included; a pydantic
    model with ``extra="allow"`` built after that (Airflow's log models, our trigger events) fails
    with "`__pydantic_extra__` must be dict[str, ...]". Built first, every model is complete.
    """
    import importlib

    for module in public_modules():
        importlib.import_module(module)

