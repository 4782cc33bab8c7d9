"""riskd's modules import downward only: no circles, and no pure part reaching for an adapter.

Read from the source with `ast`, so every import counts: top-level, inside a function
(lazy) and under `if TYPE_CHECKING:`, since a type-only import is still a dependency a
reader has to follow. Each failure names the file, the line and the import.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "riskd"

LEAVES = ("domain", "units", "redact", "notify", "sources")
"""Import nothing of riskd (sources reads the files config.py validates, below it)."""

PURE = ("breakers", "analytics", "engine", "marks", "pretrade", "wording", "portfolio")
"""Decide from values; they import no module that talks to the world."""

ADAPTERS = ("exchange", "budget", "store", "telegram", "http", "executor", "supervisor", "guard", "stream", "account_stream", "sim", "checks", "cli")

KNOWS_EVERYTHING = ("supervisor", "cli", "demo")
"""The only modules that may import the supervisor."""


@dataclass(frozen=True, slots=True)
class Import:
    source: str  # the importing module, without the `riskd.` prefix: "telegram.menu"
    target: str  # the imported module, likewise: "telegram.bot"
    where: str  # file and line, to name in a failure

    def __str__(self) -> str:
        return f"{self.where}: {self.source} imports riskd.{self.target}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(root: Path) -> list[Import]:
    """Every import of the package's own modules, in every file under `root`."""
    modules = {module_name(path, root) for path in root.rglob("*.py")}
    found = []
    for path in sorted(root.rglob("*.py")):
        source = module_name(path, root)
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            where = f"{path.relative_to(root.parent)}:{getattr(node, 'lineno', 0)}"
            for target in _targets(node, package, modules):
                found.append(Import(source, target, where))
    return found


def _targets(node: ast.AST, package: str, modules: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [_own(alias.name) for alias in node.names if _own(alias.name) is not None]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: from .x import y
        base = package.split(".") if package else []
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        named = ".".join(filter(None, [*base, node.module or ""]))
    else:
        named = _own(node.module or "")
        if named is None:
            return []
    # `from riskd import engine` imports the module riskd.engine; `from riskd.x import y` imports riskd.x
    submodules = [f"{named}.{alias.name}".lstrip(".") for alias in node.names]
    chosen = [name for name in submodules if name in modules]
    return chosen or ([named] if named else [])


def _own(name: str) -> str | None:
    """`riskd.telegram.bot` → `telegram.bot`; None for anything outside riskd."""
    if name == "riskd":
        return ""
    return name.removeprefix("riskd.") if name.startswith("riskd.") else None


def within(name: str, *parts: str) -> bool:
    return any(name == part or name.startswith(f"{part}.") for part in parts)


def violations(root: Path) -> list[str]:
    """Every import that breaks a layering rule, and every circle, in words."""
    found = imports(root)
    broken = []
    for each in found:
        if within(each.source, *LEAVES):
            broken.append(f"{each} (domain, units, redact, notify and sources import nothing of riskd)")
        elif within(each.source, *PURE) and within(each.target, *ADAPTERS):
            broken.append(f"{each} (breakers, analytics, engine, marks and wording import no adapter)")
        if within(each.target, "supervisor") and not within(each.source, *KNOWS_EVERYTHING):
            broken.append(f"{each} (only supervisor, cli and demo know the supervisor)")
        if each.source == "telegram.menu" and within(each.target, "telegram.bot"):
            broken.append(f"{each} (command runners get a Session, not the bot)")
    broken += [f"import circle among {', '.join(circle)}" for circle in circles(found)]
    return broken


def circles(found: list[Import]) -> list[list[str]]:
    """Each group of modules that import one another, directly or not (Tarjan's strongly connected components)."""
    graph: dict[str, set[str]] = {}
    for each in found:
        if each.target:
            graph.setdefault(each.source, set()).add(each.target)
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for following in sorted(graph.get(node, ())):
            if following not in index:
                visit(following)
                low[node] = min(low[node], low[following])
            elif following in on_stack:
                low[node] = min(low[node], index[following])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(sorted(group))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_riskd_imports_downward_only():
    broken = violations(PACKAGE)
    assert not broken, "\n".join(broken)


def test_the_rules_see_lazy_and_type_only_imports_and_name_the_offender(tmp_path):
    root = tmp_path / "riskd"
    files = {
        "__init__.py": "",
        "domain.py": "from riskd.units import parse_percent\n",
        "units.py": "",
        "store.py": "",
        "engine.py": "def step():\n    from riskd import store\n",
        "http.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from riskd.supervisor import Daemon\n",
        "supervisor.py": "from riskd import http\n",
        "telegram/__init__.py": "",
        "telegram/bot.py": "from .menu import COMMANDS\n",
        "telegram/menu.py": "from riskd.telegram.bot import TelegramBot\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert violations(root) == [
        "riskd/domain.py:1: domain imports riskd.units (domain, units, redact, notify and sources import nothing of riskd)",
        "riskd/engine.py:2: engine imports riskd.store (breakers, analytics, engine, marks and wording import no adapter)",
        "riskd/http.py:3: http imports riskd.supervisor (only supervisor, cli and demo know the supervisor)",
        "riskd/telegram/menu.py:1: telegram.menu imports riskd.telegram.bot (command runners get a Session, not the bot)",
        "import circle among http, supervisor",
        "import circle among telegram.bot, telegram.menu",
    ]

