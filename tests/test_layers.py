"""The layers of the design hold: the policy is pure, and the portal never needs the bridge.

- every module of ``portal.policy`` imports neither Flask nor SQLAlchemy (each in a fresh
  interpreter, so nothing another test imported hides it), and nothing of the portal but
  the policy itself: the rules read like the policy and test in microseconds;
- nothing under ``portal/`` imports ``mailbridge``: the bridge uses the portal's models and
  services, never the other way round (the ``flask mailbridge`` commands are registered as
  an entry point for that reason);
- views hold no queries, so they do not import ``sqlalchemy``.

Imports are read with :mod:`ast`, not grep: an import inside a function or a
``TYPE_CHECKING`` block counts, a word in a docstring does not.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PORTAL = ROOT / "portal"
POLICY = PORTAL / "policy"
VIEWS = [PORTAL / "staff", PORTAL / "public"]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = ROOT) -> Iterator[str]:
    """Every module ``path`` imports, as absolute names (relative imports resolved)."""
    if path.name == "__init__.py":
        package = module_name(path, root)
    else:
        package = ".".join(path.parent.relative_to(root).parts)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                yield ".".join([*base, *([node.module] if node.module else [])])
            elif node.module:
                yield node.module


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


POLICY_MODULES = sorted(module_name(path) for path in POLICY.glob("*.py"))


def test_the_policy_package_has_its_modules() -> None:
    """The walk below finds something to check (and a new module is checked without listing)."""
    assert {"portal.policy", "portal.policy.actions", "portal.policy.appeals"} <= set(
        POLICY_MODULES
    )


@pytest.mark.parametrize("module", POLICY_MODULES)
def test_a_policy_module_loads_neither_flask_nor_sqlalchemy(module: str) -> None:
    check = (
        f"import {module}, sys; "
        "loaded = sorted({n.split('.')[0] for n in sys.modules} & {'flask', 'sqlalchemy'}); "
        "assert not loaded, loaded"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", sorted(POLICY.glob("*.py")), ids=lambda p: p.name)
def test_a_policy_module_imports_no_other_part_of_the_portal(path: Path) -> None:
    outside = [
        name
        for name in imported_modules(path)
        if within(name, "portal") and not within(name, "portal.policy")
    ]
    assert outside == [], f"{path.relative_to(ROOT)} imports {outside}"


def test_nothing_in_the_portal_imports_the_mail_bridge() -> None:
    offenders = {
        str(path.relative_to(ROOT)): name
        for path in sorted(PORTAL.rglob("*.py"))
        for name in imported_modules(path)
        if within(name, "mailbridge")
    }
    assert offenders == {}


def test_the_import_reader_sees_what_grep_would_miss(tmp_path: Path) -> None:
    """Relative, nested and TYPE_CHECKING imports all count; a docstring does not."""
    sample = tmp_path / "portal" / "staff" / "sample.py"
    sample.parent.mkdir(parents=True)
    sample.write_text(
        '"""import mailbridge"""\n'
        "from typing import TYPE_CHECKING\n"
        "from . import forms\n"
        "from ..policy import roles\n"
        "if TYPE_CHECKING:\n"
        "    import sqlalchemy.orm\n"
        "def f() -> None:\n"
        "    from mailbridge.threads import decide\n"
    )
    assert list(imported_modules(sample, tmp_path)) == [
        "typing",
        "portal.staff",
        "portal.policy",
        "sqlalchemy.orm",
        "mailbridge.threads",
    ]


@pytest.mark.xfail(
    strict=True,
    reason="issue 12, section 2: views still hold queries (read models and the unit of work "
    "move them out); remove this marker then",
)
def test_views_do_not_import_sqlalchemy() -> None:
    offenders = {
        str(path.relative_to(ROOT)): name
        for folder in VIEWS
        for path in sorted(folder.rglob("*.py"))
        for name in imported_modules(path)
        if within(name, "sqlalchemy")
    }
    assert offenders == {}
