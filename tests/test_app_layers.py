"""The Django apps are layered: care at the bottom, then alerts, then dispatch; the web package
(settings, URLs, site pages) on top. A domain app never imports the web layer and no two apps
import each other in a circle. `python -m tests.test_app_layers` prints the graph."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "lianxin"
# The Django apps and the web layer; a new app's package is picked up from its apps.py.
APPS = sorted(p.parent.name for p in SRC.glob("*/apps.py")) + ["web"]
DOMAIN = [a for a in APPS if a != "web"]


def imports_of(app: str) -> dict[str, set[str]]:
    """{other app: {module of `app` that imports it}}, counting imports inside functions too."""
    found: dict[str, set[str]] = {}
    for path in (SRC / app).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "lianxin" and len(parts) > 1 and parts[1] in APPS:
                    if parts[1] != app:
                        found.setdefault(parts[1], set()).add(str(path.relative_to(SRC)))
    return found


def graph() -> dict[str, dict[str, set[str]]]:
    return {app: imports_of(app) for app in APPS}


def test_no_domain_app_imports_the_web_layer():
    reaching_up = {app: sorted(imports_of(app).get("web", ())) for app in DOMAIN}
    assert {app: mods for app, mods in reaching_up.items() if mods} == {}


def test_no_two_apps_import_each_other_in_a_circle():
    g = {app: set(deps) for app, deps in graph().items()}

    def cycle_from(start, node, seen):
        for nxt in g[node]:
            if nxt == start:
                return [node, nxt]
            if nxt not in seen:
                seen.add(nxt)
                rest = cycle_from(start, nxt, seen)
                if rest:
                    return [node, *rest]
        return None

    circles = {frozenset(c) for app in APPS if (c := cycle_from(app, app, {app}))}
    assert circles == set()


@pytest.mark.parametrize("app", ["care"])
def test_care_is_the_bottom_layer(app):
    assert set(imports_of(app)) == set()


def test_the_spark_package_imports_no_django_and_no_app():
    """lianxin.spark runs inside Spark executors: the engine and the store, never the web layer
    or the database (`lianxin import-findings`, a command, is what turns findings into alerts)."""
    bad = []
    for path in (SRC / "spark").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "django" or (parts[0] == "lianxin" and len(parts) > 1
                                            and parts[1] in APPS):  # fmt: skip
                    bad.append(f"{path.relative_to(SRC)}: {name}")
    assert bad == []


if __name__ == "__main__":
    for app, deps in graph().items():
        print(f"{app:9} → {', '.join(sorted(deps)) or '(none)'}")
        for dep, mods in sorted(deps.items()):
            print(f"{'':11}{dep}: {', '.join(sorted(mods))}")
