"""One owner per table (DESIGN.md; docs/sending.md, "Who writes what"), over the source itself,
with no database: a model's rows are written (`Model.objects....create/update/delete/...`, or
raw SQL `INSERT INTO` / `UPDATE` / `DELETE FROM` its table) only by its own app's modules, and the
core's shared tables only by the core module that owns each one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "penguinmails", "tenants", "webhooks", "billing", "infrastructure", "deliverability",
    "warmup", "reputation", "campaigns",
)  # fmt: skip
WRITES = frozenset(
    {"create", "update", "delete", "update_or_create", "get_or_create", "bulk_create",
     "bulk_update"}
)  # fmt: skip

# The core's shared tables: model -> (table, the modules that may write it: a module or package).
CORE_OWNERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Job": ("jobs", ("penguinmails.queue",)),
    "Alert": ("alerts", ("penguinmails.alerts",)),
    "RunningCampaign": ("running_campaigns", ("penguinmails.indexes",)),
    "ScheduledCampaign": ("scheduled_campaigns", ("penguinmails.indexes",)),
    "Backup": ("backups_backup", ("penguinmails.backups",)),
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, ast.Module]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module(path)] = ast.parse(path.read_text())
    return found


SOURCES = _sources()


def _model_apps() -> dict[str, str]:
    """Model class name -> the app (top package) whose models module defines it."""
    apps: dict[str, str] = {}
    for module, tree in SOURCES.items():
        parts = module.split(".")
        if len(parts) < 2 or not parts[1].startswith("models") and parts[-1] != "models":
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name[:1].isupper():
                apps.setdefault(node.name, parts[0])
    return apps


MODEL_APPS = _model_apps()


def _manager_model(node: ast.expr) -> str | None:
    """`Model` in `Model.objects.<...>` (through any chain of calls and attributes)."""
    while isinstance(node, ast.Call | ast.Attribute):
        if isinstance(node, ast.Attribute) and node.attr == "objects":
            return node.value.id if isinstance(node.value, ast.Name) else None
        node = node.func if isinstance(node, ast.Call) else node.value
    return None


def _orm_writes() -> list[tuple[str, int, str, str]]:
    """(module, line, model, method) for every `Model.objects....<write>(...)` in the source."""
    found = []
    for module, tree in SOURCES.items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in WRITES
            ):
                model = _manager_model(node.func.value)
                if model is not None:
                    found.append((module, node.lineno, model, node.func.attr))
    return found


ORM_WRITES = _orm_writes()


def _owned_by(module: str, owners: tuple[str, ...]) -> bool:
    return any(module == o or module.startswith(o + ".") for o in owners)


def test_the_scan_sees_the_owners_writes() -> None:
    """The scan is alive: it finds the owners' own writes (a scan that finds nothing proves
    nothing)."""
    seen = {(model, module) for module, _, model, _ in ORM_WRITES}
    assert ("Job", "penguinmails.queue.producer") in seen
    assert ("RunningCampaign", "penguinmails.indexes") in seen
    assert ("ScheduledCampaign", "penguinmails.indexes") in seen
    assert {"Job", "RunningCampaign", "ScheduledCampaign", "Mailbox", "Campaign"} <= set(MODEL_APPS)


def test_models_are_written_only_by_their_own_app() -> None:
    outside = [
        f"{module}:{line} {model}.objects...{method}() ({MODEL_APPS[model]}'s table)"
        for module, line, model, method in ORM_WRITES
        if model in MODEL_APPS and module.split(".")[0] != MODEL_APPS[model]
    ]
    assert not outside, "write through the owning app's services:\n" + "\n".join(outside)


def test_core_tables_are_written_only_by_their_owner_module() -> None:
    outside = [
        f"{module}:{line} {model}.objects...{method}()"
        for module, line, model, method in ORM_WRITES
        if model in CORE_OWNERS and not _owned_by(module, CORE_OWNERS[model][1])
    ]
    assert not outside, "write through the owner (penguinmails.queue, .indexes):\n" + "\n".join(
        outside
    )


def test_core_tables_get_no_raw_sql_writes_elsewhere() -> None:
    outside = []
    for model, (table, owners) in CORE_OWNERS.items():
        pattern = re.compile(rf"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+{table}\b", re.I)
        for module, tree in SOURCES.items():
            if _owned_by(module, owners):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    if pattern.search(node.value):
                        outside.append(f"{module}:{node.lineno} writes {table} ({model})")
    assert not outside, "\n".join(outside)
