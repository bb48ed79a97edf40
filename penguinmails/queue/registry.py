"""The one registry of job handlers, by name, with their queue options and transient errors.

Handlers are found in every installed app's `jobs` module or package (the platform's own in
`penguinmails.jobs`): `autodiscover()` imports them at start-up (PenguinmailsConfig.ready), as
Django's admin finds `admin` modules, so no central list names them. The modules named by the
comma-separated environment variable PM_EXTRA_HANDLER_MODULES are imported at the first lookup
(tests use it to give real workers test-only handlers).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils.module_loading import autodiscover_modules

from penguinmails.models import DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY

Payload = dict[str, Any]


@dataclass(frozen=True)
class JobContext:
    """What a handler knows about the job it runs; `heartbeat()` extends the lease at once."""

    job_id: int
    attempt: int
    tenant_id: int | None
    schema_name: str
    worker_id: str
    heartbeat: Callable[[], None] = field(repr=False)


HandlerFunc = Callable[[Payload, JobContext], None]


@dataclass(frozen=True)
class Handler:
    """A registered handler. Only errors in `transient` are retried; anything else is final."""

    name: str
    func: HandlerFunc
    transient: tuple[type[BaseException], ...] = ()
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    priority: int = DEFAULT_PRIORITY
    # Seconds; the worker raises a (transient) soft time limit, then kills the process.
    timeout: int = 300
    # A tenant-scoped handler refuses to run without a tenant (it would otherwise run in public).
    tenant_scoped: bool = False


class UnknownHandler(LookupError):
    pass


_handlers: dict[str, Handler] = {}
_loaded = False
_lock = threading.Lock()


def job_handler(
    name: str,
    *,
    transient: tuple[type[BaseException], ...] = (),
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    priority: int = DEFAULT_PRIORITY,
    timeout: int = 300,
    tenant_scoped: bool = False,
) -> Callable[[HandlerFunc], HandlerFunc]:
    """Register `func(payload, context)` as the handler of jobs named `name`."""

    def register(func: HandlerFunc) -> HandlerFunc:
        existing = _handlers.get(name)
        if existing is not None and existing.func is not func:
            raise ValueError(f"job handler {name!r} is registered twice")
        _handlers[name] = Handler(
            name=name,
            func=func,
            transient=transient,
            max_attempts=max_attempts,
            priority=priority,
            timeout=timeout,
            tenant_scoped=tenant_scoped,
        )
        return func

    return register


def autodiscover() -> None:
    """Import every installed app's `jobs` module (or package); importing registers handlers."""
    autodiscover_modules("jobs")


def load_handlers() -> None:
    """Import every module that registers handlers (once per process)."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        autodiscover()
        extra = os.environ.get("PM_EXTRA_HANDLER_MODULES", "")
        for module in filter(None, (m.strip() for m in extra.split(","))):
            importlib.import_module(module)
        _loaded = True


def get_handler(name: str) -> Handler:
    load_handlers()
    try:
        return _handlers[name]
    except KeyError:
        raise UnknownHandler(f"no job handler is registered as {name!r}") from None
