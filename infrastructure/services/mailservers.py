"""Mail servers: which one a tenant's mailboxes go on, and a Mailu client for it.

A tenant whose plan includes dedicated servers uses its own (provisioned on the Infrastructure
page). A plan without any (Starter: `vps_count` 0) sends from the platform's shared mail server:
a MailServer row flagged `shared` with no tenant. With the local VPS provider (dev, demo, tests)
the shared server is created on first use and points at the sandbox SMTP server, as the
dedicated ones do there; in production staff register them (`register_shared_mail_server`, from
`manage.py infra shared add` or the staff admin) and retire them (`retire_shared_mail_server`).

Among several active shared servers a tenant keeps the one its hosted mailboxes are already on
(its domains then live on one Mailu server, with one DKIM key each); a tenant with none goes on
the server with the fewest hosted mailboxes (the oldest on a tie).
"""

from __future__ import annotations

import re
from ipaddress import ip_address
from typing import TypedDict
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from billing.entitlements import limits_for
from infrastructure.mailu import MailuAuthError, MailuClient, MailuError
from infrastructure.models import MailServer, MailServerKind, MailServerStatus
from penguinmails import states
from penguinmails.errors import Conflict, IllegalTransition, NotFound, ValidationFailed
from penguinmails.providers import VpsProviderName
from tenants.models import Tenant, User
from tenants.services.audit import record as audit

SHARED_SANDBOX_HOSTNAME = "shared.sandbox.localhost"


def active_mail_server(tenant: Tenant) -> MailServer | None:
    """The tenant's own active mail server (the oldest, when it has several), or None."""
    return (
        MailServer.objects.filter(tenant=tenant, status=MailServerStatus.ACTIVE)
        .order_by("created_at", "id")
        .first()
    )


def uses_shared_servers(tenant: Tenant) -> bool:
    """True when the tenant's plan includes no dedicated server: it sends from shared ones."""
    return limits_for(tenant).vps_count <= 0


def _local_stand_ins() -> bool:
    # The rule of get_vps_provider() (without building a provider): with the local provider the
    # dedicated servers' mail servers are the sandbox too
    # (provisioning.mailserver._mail_server_for).
    choice = settings.VPS_PROVIDER or (
        VpsProviderName.HOSTWINDS if settings.HOSTWIND_API_KEY else VpsProviderName.LOCAL
    )
    return choice == VpsProviderName.LOCAL


def shared_mail_server(tenant: Tenant | None = None) -> MailServer | None:
    """The active shared mail server for `tenant`'s next mailbox (module docstring: the one it
    already uses, else the least loaded); created on first use with the local provider (the
    sandbox SMTP server stands in), None in production until staff register one."""
    candidates = list(
        MailServer.objects.filter(shared=True, status=MailServerStatus.ACTIVE).order_by(
            "created_at", "id"
        )
    )
    if candidates:
        return _pick_shared(candidates, tenant)
    if not _local_stand_ins():
        return None
    try:
        with transaction.atomic():
            server, _ = MailServer.objects.get_or_create(
                shared=True,
                kind=MailServerKind.SANDBOX,
                hostname=SHARED_SANDBOX_HOSTNAME,
                defaults={
                    "tenant": None,
                    "smtp_host": settings.SANDBOX_SMTP_HOST,
                    "smtp_port": settings.SANDBOX_SMTP_PORT,
                    "imap_host": "",
                    "status": MailServerStatus.ACTIVE,
                },
            )
    except IntegrityError:  # pragma: no cover - two first uses at once; the other one won
        server = MailServer.objects.get(shared=True, hostname=SHARED_SANDBOX_HOSTNAME)
    return server if server.status == MailServerStatus.ACTIVE else None


def mail_server_for(tenant: Tenant) -> MailServer | None:
    """Where the tenant's new hosted mailboxes go: its own active server, else a shared one
    when its plan has no dedicated servers, else None (provision first)."""
    own = active_mail_server(tenant)
    if own is not None or not uses_shared_servers(tenant):
        return own
    return shared_mail_server(tenant)


# --- choosing among shared servers ----------------------------------------------------------------
# Mailboxes live in tenant schemas and point at a public MailServer by a plain integer
# (deliverability.Mailbox.mail_server_id), so counting them per server reads every tenant schema:
# one UNION ALL query, run only when there is a choice to make. Schema and table names come from
# the catalog (or django-tenants' validated schema_name) and are quoted; values are parameters.
def _pick_shared(candidates: list[MailServer], tenant: Tenant | None) -> MailServer:
    if len(candidates) == 1:
        return candidates[0]
    by_id = {server.pk: server for server in candidates}
    schemas = _schemas_with_mailboxes()
    if tenant is not None and tenant.schema_name in schemas:
        current = _latest_server_in(tenant.schema_name, list(by_id))
        if current is not None:
            return by_id[current]
    counts = _hosted_mailboxes_dangerously_all_tenants(list(by_id), schemas)
    return min(candidates, key=lambda server: counts.get(server.pk, 0))  # ties: the oldest


def _mailbox_table() -> str:
    return str(apps.get_model("deliverability", "Mailbox")._meta.db_table)


def _schemas_with_mailboxes() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = %s AND c.relkind = 'r' ORDER BY n.nspname",
            [_mailbox_table()],
        )
        return [row[0] for row in cursor.fetchall()]


def _latest_server_in(schema: str, server_ids: list[int]) -> int | None:
    """The server (among `server_ids`) of the newest mailbox in one tenant's schema."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT mail_server_id FROM {quote(schema)}.{quote(_mailbox_table())} "  # noqa: S608
            "WHERE mail_server_id = ANY(%s) ORDER BY id DESC LIMIT 1",
            [server_ids],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


def _hosted_mailboxes_dangerously_all_tenants(
    server_ids: list[int], schemas: list[str] | None = None
) -> dict[int, int]:
    """How many mailboxes of every tenant are on each of `server_ids` (crosses tenants)."""
    schemas = _schemas_with_mailboxes() if schemas is None else schemas
    if not schemas or not server_ids:
        return {}
    quote, table = connection.ops.quote_name, connection.ops.quote_name(_mailbox_table())
    union = " UNION ALL ".join(
        f"SELECT mail_server_id FROM {quote(schema)}.{table} WHERE mail_server_id = ANY(%s)"  # noqa: S608
        for schema in schemas
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT mail_server_id, count(*) FROM ({union}) AS hosted GROUP BY 1",  # noqa: S608
            [server_ids] * len(schemas),
        )
        return {int(server_id): int(count) for server_id, count in cursor.fetchall()}


def mailu_client_for(server: MailServer, **options: object) -> MailuClient:
    """A Mailu admin API client for `server` (close it, or use it as a context manager).

    Raises ValidationFailed for a sandbox server, which has no admin API; the token is revealed
    here only, and raises penguinmails.crypto.SecretUnavailable when the keys cannot open it.
    """
    if server.kind != MailServerKind.MAILU or not server.api_url or server.api_token is None:
        raise ValidationFailed(f"Mail server {server.hostname} has no Mailu admin API.")
    return MailuClient(server.api_url, server.api_token.reveal(), **options)  # type: ignore[arg-type]


# --- staff: registering and retiring shared servers -------------------------------------------
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+$")
_TOKEN = re.compile(r"^[\x21-\x7e]{8,1024}$")  # printable ASCII, no spaces
# Held while checking the host name is free and inserting, so two registrations of one host
# at the same moment cannot both pass the check (there is no unique index on hostname).
_REGISTER_LOCK = 0x504D_5348  # "PMSH"


class SharedServerRow(TypedDict):
    id: int
    hostname: str
    kind: str
    status: str
    smtp: str
    imap: str
    api_url: str
    mailboxes: int
    created_at: str


def register_shared_mail_server(
    *,
    hostname: str,
    smtp_host: str,
    smtp_port: int,
    imap_host: str,
    imap_port: int,
    mailu_api_url: str,
    api_token: str,
    actor: User | None,
) -> MailServer:
    """Add a platform-owned Mailu server that plans without dedicated servers put mailboxes on.

    Every field is checked first (ValidationFailed naming each bad field), then that no live mail
    server already has the host name (Conflict), then that Mailu's API answers with the token
    (one call, outside any transaction; a refusal is ValidationFailed and nothing is saved). The
    token is stored encrypted and never echoed, logged or audited.
    """
    host = (hostname or "").strip().lower().rstrip(".")
    smtp = (smtp_host or "").strip().lower().rstrip(".")
    imap = (imap_host or "").strip().lower().rstrip(".")
    api_url = (mailu_api_url or "").strip().rstrip("/")
    token = (api_token or "").strip()
    _validate_registration(host, smtp, smtp_port, imap, imap_port, api_url, token)
    _refuse_taken_hostname(host)
    _check_mailu_answers(api_url, token)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_REGISTER_LOCK])
        _refuse_taken_hostname(host)
        server = MailServer.objects.create(
            tenant=None,
            shared=True,
            kind=MailServerKind.MAILU,
            hostname=host,
            api_url=api_url,
            api_token=token,
            smtp_host=smtp,
            smtp_port=smtp_port,
            imap_host=imap,
            imap_port=imap_port,
            status=MailServerStatus.ACTIVE,
        )
        audit(
            "infra.shared_server_registered",
            actor=actor,
            mail_server_id=server.pk,
            hostname=host,
            api_url=api_url,
            smtp=f"{smtp}:{smtp_port}",
            imap=f"{imap}:{imap_port}",
        )
    return server


def retire_shared_mail_server(server: MailServer, *, actor: User | None) -> MailServer:
    """Stop putting new mailboxes on a shared server. Mailboxes already on it keep their
    settings and go on sending until moved; a tenant's next mailbox goes on another active shared
    server, or is refused (409) when none is left."""
    with transaction.atomic():
        locked = MailServer.objects.select_for_update().get(pk=server.pk)
        if not locked.shared:
            raise Conflict(
                f"{locked.hostname} is a tenant's own mail server: terminate its VPS instead."
            )
        if locked.status == MailServerStatus.RETIRED:
            raise IllegalTransition(f"{locked.hostname} is already retired.")
        previous = locked.status
        states.transition(locked, MailServerStatus.RETIRED, reason="retired", actor=actor)
        audit(
            "infra.shared_server_retired",
            actor=actor,
            mail_server_id=locked.pk,
            hostname=locked.hostname,
            previous_status=previous,
        )
    return locked


def find_shared_mail_server(hostname: str) -> MailServer:
    """The live (not retired) shared server with this host name, or NotFound."""
    host = (hostname or "").strip().lower().rstrip(".")
    found = (
        MailServer.objects.filter(shared=True, hostname=host)
        .exclude(status=MailServerStatus.RETIRED)
        .first()
    )
    if found is not None:
        return found
    if MailServer.objects.filter(shared=True, hostname=host).exists():
        raise IllegalTransition(f"{host} is already retired.")
    raise NotFound(f"No shared mail server named '{host}'.")


def shared_mail_servers() -> list[SharedServerRow]:
    """Every shared server (retired ones too), oldest first, with its hosted mailbox count."""
    servers = list(MailServer.objects.filter(shared=True).order_by("created_at", "id"))
    counts = _hosted_mailboxes_dangerously_all_tenants([s.pk for s in servers])
    return [
        SharedServerRow(
            id=s.pk,
            hostname=s.hostname,
            kind=s.kind,
            status=s.status,
            smtp=f"{s.smtp_host}:{s.smtp_port}",
            imap=f"{s.imap_host}:{s.imap_port}" if s.imap_host else "",
            api_url=s.api_url,
            mailboxes=counts.get(s.pk, 0),
            created_at=s.created_at.isoformat(),
        )
        for s in servers
    ]


def _validate_registration(
    host: str, smtp: str, smtp_port: int, imap: str, imap_port: int, api_url: str, token: str
) -> None:
    errors: dict[str, list[str]] = {}
    for field, value in (("hostname", host), ("smtp_host", smtp), ("imap_host", imap)):
        if not _HOSTNAME.match(value):
            errors[field] = ["Enter a full host name, such as mail.example.com."]
    for field, port in (("smtp_port", smtp_port), ("imap_port", imap_port)):
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            errors[field] = ["Enter a port number from 1 to 65535."]
    url_problem = _api_url_problem(api_url)
    if url_problem:
        errors["mailu_api_url"] = [url_problem]
    if not _TOKEN.match(token):
        # Never the value itself: it is a secret even when malformed.
        errors["api_token"] = ["Enter the Mailu API token (8+ printable characters, no spaces)."]
    if errors:
        summary = " ".join(f"{field}: {msgs[0]}" for field, msgs in errors.items())
        raise ValidationFailed(summary, fields=errors)


def _api_url_problem(url: str) -> str:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        return "The URL's port is not valid."
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "Enter the Mailu API's URL, such as https://mail.example.com/api/v1."
    if parts.username or parts.password or parts.query or parts.fragment:
        return "The URL takes no credentials, query or fragment: the token is a separate field."
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        return "Use https: the API token must not travel in clear text."
    return ""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse_taken_hostname(host: str) -> None:
    if MailServer.objects.filter(hostname=host).exclude(status=MailServerStatus.RETIRED).exists():
        message = f"A mail server named {host} is already registered."
        raise Conflict(message, fields={"hostname": [message]})


def _check_mailu_answers(api_url: str, token: str) -> None:
    try:
        # One attempt: Mailu counts every bad token toward locking our address out.
        with MailuClient(api_url, token, attempts=1) as client:
            client.list_domains()
    except MailuAuthError as exc:
        raise ValidationFailed(
            f"Mailu at {api_url} refused the token: {exc.message}",
            fields={"api_token": [exc.message]},
        ) from None
    except MailuError as exc:
        raise ValidationFailed(
            f"Mailu's API at {api_url} did not answer: {exc.message}",
            fields={"mailu_api_url": [exc.message]},
        ) from None
