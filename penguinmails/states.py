"""The one state-machine helper of every lifecycle (docs/states.md).

Each model with a lifecycle declares, next to itself, one `StateMachine`: its status field and a
table `{from: {to, ...}}` of allowed moves. Every status change goes through `transition()`:

- a move the table does not allow raises `IllegalTransition` and changes nothing;
- the move is one conditional UPDATE (`... WHERE status IN (allowed sources)`), so of two
  concurrent movers only one wins; the loser moves nothing (one object: IllegalTransition);
- each move writes one row to the one transition log (`penguinmails.history.Transition`), in the
  schema where the object lives, except the routine moves a machine declares `quiet` (the send
  path's queued -> sending -> sent; a job's enqueued -> running -> completed), which would only
  multiply writes on the hot path without telling anyone anything.

Set-based code that moves rows with its own SQL (the send path) checks its moves with
`check_move()` and logs them with `log_moves()`: one INSERT for any number of rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from penguinmails.errors import IllegalTransition
from penguinmails.history.models import Transition

M = TypeVar("M", bound=models.Model)

SYSTEM = "system"

_MACHINES: dict[str, StateMachine] = {}


@dataclass(frozen=True)
class StateMachine:
    """The allowed moves of one model's status field, declared once beside the model."""

    model: type[models.Model]
    table: Mapping[str, Collection[str]]
    field: str = "status"
    # (from, to) moves that are routine and high-volume: checked, never logged.
    quiet: frozenset[tuple[str, str]] = frozenset()
    label: str = dataclasses.field(
        default="", init=False
    )  # the model's label: the log's object_type
    _targets: dict[str, frozenset[str]] = dataclasses.field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", self.model._meta.label_lower)
        object.__setattr__(
            self, "_targets", {str(k): frozenset(str(t) for t in v) for k, v in self.table.items()}
        )
        _MACHINES[self.label] = self

    @property
    def public(self) -> bool:
        """Whether the model lives in the public schema only (a shared, non-tenant app)."""
        app = apps.get_app_config(self.model._meta.app_label).name
        return app not in settings.TENANT_APPS

    def allows(self, from_: str, to: str) -> bool:
        return str(to) in self._targets.get(str(from_), frozenset())

    def sources(self, to: str) -> list[str]:
        """Every status from which `to` may be reached."""
        return sorted(s for s, targets in self._targets.items() if str(to) in targets)

    def choices(self) -> dict[str, str]:
        status = self.model._meta.get_field(self.field)
        assert isinstance(status, models.Field)  # a concrete column, never a relation
        return {str(k): str(v) for k, v in status.flatchoices}

    def display(self, status: str) -> str:
        return self.choices().get(status, status)

    def logs(self, from_: str, to: str) -> bool:
        return (str(from_), str(to)) not in self.quiet


def machines() -> dict[str, StateMachine]:
    """Every declared machine, by model label (the tests walk them)."""
    return dict(_MACHINES)


def machine_for(model: type[models.Model] | models.Model) -> StateMachine:
    label = model._meta.label_lower
    if label not in _MACHINES:
        raise LookupError(f"{label} declares no StateMachine")
    return _MACHINES[label]


def actor_label(actor: Any) -> tuple[str, int | None]:
    """(what the log shows, user id) for a user, a job id (int), a label or None (system)."""
    if actor is None:
        return SYSTEM, None
    if isinstance(actor, int):
        return f"job:{actor}", None
    if isinstance(actor, str):
        return actor or SYSTEM, None
    email = getattr(actor, "email", "") or ""
    return (email or f"user:{actor.pk}"), actor.pk


def check_move(machine: StateMachine, from_: Iterable[str], to: str) -> None:
    """Raise IllegalTransition unless every status in `from_` may move to `to`."""
    for source in from_:
        if not machine.allows(source, to):
            name = machine.model._meta.verbose_name
            raise IllegalTransition(
                f"A {name} cannot go from {machine.display(str(source)).lower()} "
                f"to {machine.display(str(to)).lower()}."
            )


def transition(
    target: M | models.QuerySet[M],
    to: str,
    *,
    reason: str = "",
    actor: Any = None,
    from_: Collection[str] | None = None,
    **fields: Any,
) -> Any:
    """Move one object (returns it, updated in place) or a queryset (returns rows moved) to `to`.

    One object moves from the status it was read in; IllegalTransition if the table refuses or
    another mover got there first. A queryset moves its rows that are in `from_` (default: every
    status the table allows into `to`); rows elsewhere are left alone and not counted.
    """
    if isinstance(target, models.QuerySet):
        return _move_rows(target, to, reason=reason, actor=actor, from_=from_, fields=fields)
    return _move_one(target, to, reason=reason, actor=actor, fields=fields)


def _move_one(obj: M, to: str, *, reason: str, actor: Any, fields: dict[str, Any]) -> M:
    machine = machine_for(obj)
    current = str(getattr(obj, machine.field))
    check_move(machine, [current], to)
    model = type(obj)
    changes = {machine.field: to, **fields}
    if _has_field(model, "updated_at") and "updated_at" not in changes:
        changes["updated_at"] = timezone.now()
    with transaction.atomic():
        moved = model._default_manager.filter(pk=obj.pk, **{machine.field: current}).update(
            **changes
        )
        if moved == 0:
            raise IllegalTransition(f"{obj} changed status meanwhile; reload and retry.")
        if machine.logs(current, to):
            log_moves(machine, [(obj.pk, current)], to, reason=reason, actor=actor)
    for name, value in changes.items():
        setattr(obj, name, value)
    return obj


def _move_rows(
    rows: models.QuerySet[M],
    to: str,
    *,
    reason: str,
    actor: Any,
    from_: Collection[str] | None,
    fields: dict[str, Any],
) -> int:
    machine = machine_for(rows.model)
    sources = [str(s) for s in from_] if from_ is not None else machine.sources(to)
    check_move(machine, sources, to)
    changes = {machine.field: to, **fields}
    if _has_field(rows.model, "updated_at") and "updated_at" not in changes:
        changes["updated_at"] = timezone.now()
    candidates = rows.filter(**{f"{machine.field}__in": sources})
    if not any(machine.logs(source, to) for source in sources):
        return candidates.update(**changes)
    with transaction.atomic():
        # Lock and read the sources first: the log needs each row's from-status, and the lock
        # keeps them true until the UPDATE below.
        locked = list(
            candidates.select_for_update().order_by("pk").values_list("pk", machine.field)
        )
        if not locked:
            return 0
        moved = rows.model._default_manager.filter(pk__in=[pk for pk, _ in locked]).update(
            **changes
        )
        logged = [(pk, str(status)) for pk, status in locked if machine.logs(status, to)]
        log_moves(machine, logged, to, reason=reason, actor=actor)
    return moved


def transition_each(
    moves: Sequence[tuple[M, dict[str, Any]]], to: str, *, reason: str = "", actor: Any = None
) -> int:
    """Move several objects of one model to `to`, each with fields of its own, in one UPDATE.
    For set-based code that holds the rows' locks (select_for_update in the same transaction),
    so each is still in the status it was read in. Returns how many moved."""
    if not moves:
        return 0
    model = type(moves[0][0])
    machine = machine_for(model)
    check_move(machine, {str(getattr(obj, machine.field)) for obj, _ in moves}, to)
    now = timezone.now()
    names: set[str] = {machine.field}
    if _has_field(model, "updated_at"):
        names.add("updated_at")
    logged = []
    for obj, fields in moves:
        current = str(getattr(obj, machine.field))
        if machine.logs(current, to):
            logged.append((int(obj.pk), current))
        for name, value in {**fields, machine.field: to}.items():
            setattr(obj, name, value)
            names.add(name)
        if "updated_at" in names and "updated_at" not in fields:
            obj.updated_at = now  # type: ignore[attr-defined]
    with transaction.atomic():
        _update_from_values(model, [obj for obj, _ in moves], sorted(names))
        if logged:
            log_moves(machine, logged, to, reason=reason, actor=actor)
    return len(moves)


def _update_from_values(model: type[models.Model], objs: Sequence[Any], names: list[str]) -> None:
    """One `UPDATE ... FROM (VALUES ...)` writing each object's own values of `names`: what
    bulk_update does with a CASE per column, which PostgreSQL evaluates row by row (several
    times slower for 50 rows of 10 columns)."""
    meta = model._meta
    fields = [meta.get_field(name) for name in names]
    columns: list[str] = [str(f.column) for f in fields]  # type: ignore[union-attr]
    casts = [f.db_type(connection) for f in fields]  # type: ignore[union-attr]
    pk_type = meta.pk.db_type(connection)  # type: ignore[union-attr]
    row = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    params: list[Any] = []
    for obj in objs:
        params.append(obj.pk)
        params.extend(
            f.get_db_prep_save(getattr(obj, f.attname), connection)  # type: ignore[union-attr]
            for f in fields
        )
    qn = connection.ops.quote_name
    sets = ", ".join(f"{qn(c)} = v.{qn(c)}::{cast}" for c, cast in zip(columns, casts, strict=True))
    names_sql = ", ".join(qn(c) for c in ["pk__", *columns])
    sql = (
        f"UPDATE {qn(meta.db_table)} AS t SET {sets} "  # noqa: S608 - names from the model
        f"FROM (VALUES {', '.join([row] * len(objs))}) AS v({names_sql}) "
        f"WHERE t.{qn(meta.pk.column)} = v.pk__::{pk_type}"  # type: ignore[union-attr]
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def note(obj: models.Model, *, reason: str, actor: Any = None) -> None:
    """Log an event in the object's history that is not a move (its creation): from = to."""
    machine = machine_for(obj)
    status = str(getattr(obj, machine.field))
    log_moves(machine, [(int(obj.pk), status)], status, reason=reason, actor=actor)


def log_moves(
    machine: StateMachine,
    moved: Sequence[tuple[int, str]] | Sequence[tuple[int, str, str]],
    to: str,
    *,
    reason: str = "",
    actor: Any = None,
    at: datetime | None = None,
) -> int:
    """Write one log row per moved object, in one INSERT ... SELECT over arrays.

    `moved` holds (object id, from status) or (object id, from status, reason of this row). For
    set-based code that moved the rows itself (after `check_move`). Public objects are logged in
    public even when a tenant's schema is on the search path (a job moved by a tenant's worker).
    """
    if not moved:
        return 0
    label, user_id = actor_label(actor)
    reasons = [str(row[2]) if len(row) > 2 else reason for row in moved]  # type: ignore[misc]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {_log_table(machine)}
                (object_type, object_id, from_status, to_status, reason, actor, actor_user_id, at)
            SELECT %s, m.id, m.from_status, %s, left(m.reason, 1000), %s, %s, %s
            FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS m(id, from_status, reason)
            """,  # noqa: S608 - the table name is ours; every value is a placeholder
            [
                machine.label,
                str(to),
                label[:320],
                user_id,
                at or timezone.now(),
                [int(row[0]) for row in moved],
                [str(row[1]) for row in moved],
                reasons,
            ],
        )
        return int(cursor.rowcount)


def _log_table(machine: StateMachine) -> str:
    table = Transition._meta.db_table
    if machine.public:
        return f'"{settings.PUBLIC_SCHEMA_NAME}".{table}'
    return table


def history(
    obj: models.Model, *, limit: int | None = None, newest_first: bool = False
) -> list[Any]:
    """The object's log rows, each with `from_label`/`to_label` for display."""
    machine = machine_for(obj)
    rows = Transition.objects.filter(object_type=machine.label, object_id=obj.pk)
    rows = rows.order_by("-at", "-id") if newest_first else rows.order_by("at", "id")
    if machine.public:
        # A public object's log is in public, also when read from a tenant's host.
        with schema_context(settings.PUBLIC_SCHEMA_NAME):
            found = list(rows[:limit] if limit else rows)
    else:
        found = list(rows[:limit] if limit else rows)
    names = machine.choices()
    for row in found:
        row.from_label = names.get(row.from_status, row.from_status)  # type: ignore[attr-defined]
        row.to_label = names.get(row.to_status, row.to_status)  # type: ignore[attr-defined]
    return found


def _has_field(model: type[models.Model], name: str) -> bool:
    return any(f.name == name for f in model._meta.concrete_fields)
