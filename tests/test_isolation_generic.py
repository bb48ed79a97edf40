"""Tenant isolation over every route: each API operation of the OpenAPI document and each URL
pattern of the tenant URL conf, tried by the outsider (globex's owner) against acme's rows.

Routes are found at run time (tests/routes.py), so a new route is covered the day it is added;
a route whose kwargs cannot be filled with a real acme row fails `test_it_can_fill_every_route`
rather than going untested. The outsider comes four ways:

- logged in on globex's host, with acme's ids (dashboard and API);
- logged in on globex's host, then on acme's host (a session of a non-member);
- with a globex API key on globex's host, with acme's ids;
- with a globex API key on acme's host.

Reads of an acme row must be refused (404 on globex's host: the row does not exist there; on
acme's host 401/403 or a redirect to login) and no body may carry an identifying string of an
acme row. Lists answer with globex's rows only. Writes must leave acme's data as it was: a
fingerprint of every table of acme's schema and of every public row of acme is taken before and
after each write.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection
from django.db.models import F
from django.http import HttpResponse
from django.test import Client
from django.urls import resolve
from rest_framework.test import APIClient

from tenants.models import ApiKey, Invitation, Membership, Role, Tenant
from tests.conftest import Cast, client_for, host_of
from tests.routes import (
    API_PREFIX,
    PUBLIC_PAGES,
    Objects,
    Operation,
    Page,
    Unfillable,
    api_operations,
    api_url,
    api_url_patterns,
    bump_sequences,
    dashboard_pages,
    objects_of,
    page_url,
)

# API patterns that are not operations of the OpenAPI document, on purpose.
NOT_IN_SCHEMA = {
    "schema",  # the OpenAPI document itself: public, describes no tenant's data
    "docs",  # Swagger UI over it
    None,  # the catch-all JSON 404 for unknown /api/v1/ paths
}

ACME_TAG = "zqacme"
GLOBEX_TAG = "zqglobex"
# Strings that only acme's rows and people carry; none may reach the outsider.
ACME_NAME = "Acme Agency"
ACME_MARKERS = (ACME_TAG, ACME_NAME, "@acme.test")
# Acme's tenant-schema ids start here, far above globex's (see bump_sequences).
ACME_ID_FLOOR = 7_000_000


@dataclass
class World:
    cast: Cast
    acme: Objects
    globex: Objects
    globex_key: str
    failures: list[str] = field(default_factory=list)


@pytest.fixture
def world(cast: Cast, settings: Any) -> World:
    # Hundreds of API calls in a minute: the tenant throttle is tested in tests/api.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"tenant": "1000000/min"},
    }
    from tenants.services.apikeys import create_api_key

    bump_sequences(cast.tenant, ACME_ID_FLOOR)
    acme = objects_of(cast.tenant, cast.owner, cast.member, ACME_TAG)
    globex = objects_of(cast.other_tenant, cast.outsider, None, GLOBEX_TAG)
    key = create_api_key(
        cast.other_tenant,
        name="outsider's key",
        role=Role.objects.get(tenant=None, slug="admin"),
        actor=cast.outsider,
    )
    connection.set_schema_to_public()
    return World(cast=cast, acme=acme, globex=globex, globex_key=key.plaintext)


# --- Fingerprint of acme's data -------------------------------------------------------------


def _fingerprint_sql(tenant: Tenant) -> tuple[str, list[Any]]:
    """One query fingerprinting (row count, md5 of the rows) every table holding acme's data."""
    schema = tenant.schema_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY 1",
            [schema],
        )
        own = [name for (name,) in cursor.fetchall() if name != "django_session"]
        cursor.execute(
            "SELECT c.table_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' "
            "AND t.table_type = 'BASE TABLE' ORDER BY 1"
        )
        public = [name for (name,) in cursor.fetchall()]
    # Table names come from the catalogue, never from input.
    quote = connection.ops.quote_name
    digest = "md5(coalesce(string_agg(md5(x::text), ',' ORDER BY md5(x::text)), ''))"
    select = f"SELECT %s, count(*), {digest} FROM "  # noqa: S608
    parts, params = [], []
    for name in own:
        parts.append(f"{select}{quote(schema)}.{quote(name)} x")
        params.append(f"{schema}.{name}")
    for name in public:
        parts.append(f"{select}public.{quote(name)} x WHERE tenant_id = %s")
        params += [f"public.{name}", tenant.pk]
    parts.append(f"{select}public.tenants_tenant x WHERE id = %s")
    params += ["public.tenants_tenant", tenant.pk]
    # The people of acme: an outsider must not change their accounts either.
    parts.append(
        f"{select}public.tenants_user x WHERE id IN "  # noqa: S608
        "(SELECT user_id FROM public.tenants_membership WHERE tenant_id = %s)"
    )
    params += ["public.tenants_user", tenant.pk]
    return " UNION ALL ".join(parts), params


class Fingerprint:
    def __init__(self, tenant: Tenant) -> None:
        self.sql, self.params = _fingerprint_sql(tenant)
        self.last = self.take()
        assert len(self.last) > 20, self.last  # the schema's tables were found

    def take(self) -> dict[str, tuple[int, str]]:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, self.params)
            return {name: (count, digest) for name, count, digest in cursor.fetchall()}

    def changed(self) -> list[str]:
        """Tables whose acme rows changed since the last call."""
        now = self.take()
        diff = [name for name in now if now[name] != self.last.get(name)]
        self.last = now
        return diff


def _cross_tenant_role_refs() -> list[str]:
    """Public rows of one tenant pointing at another tenant's custom role."""
    found = []
    for model in (Membership, Invitation, ApiKey):
        rows = model.objects.filter(role__tenant__isnull=False).exclude(role__tenant=F("tenant"))
        found += [f"{model.__name__} {row.pk} uses role {row.role_id}" for row in rows]
    return found


# --- Requests -------------------------------------------------------------------------------


def _body(response: HttpResponse) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")  # type: ignore[attr-defined]
    return response.content.decode(errors="replace")


def _ref_ids(objects: Objects) -> dict[str, int]:
    """Row ids by the stem of a field naming them (`template_id` -> template)."""
    k = objects.kwargs
    return {
        "campaign": k["campaign_id"],
        "step": k["step_id"],
        "variant": k["variant_id"],
        "message": k["message_id"],
        "lead": k["lead_id"],
        "template": k["template_id"],
        "suppression": k["suppression_id"],
        "import": k["import_id"],
        "mailbox": k["mailbox_id"],
        "domain": k["domain_id"],
        "invitation": k["invitation_id"],
        "membership": k["membership_id"],
        "member": k["membership_id"],
        "role": k["role_id"],
        "key": k["key_id"],
        "api_key": k["key_id"],
        "list": objects.api_ids["lists"],
        "lead_list": objects.api_ids["lists"],
    }


def _value(name: str, schema: dict[str, Any], refs: dict[str, int]) -> Any:
    """A plausible value for a body field; fields naming rows name acme's rows."""
    stem = re.sub(r"_ids?$", "", name)
    if name == "role" or name.endswith(("_id", "_ids")):
        if stem not in refs:
            raise Unfillable(f"request field {name!r} names a row objects_of() does not make")
        return (
            [refs[stem]] if name.endswith("_ids") or schema.get("type") == "array" else refs[stem]
        )
    for combined in ("allOf", "oneOf", "anyOf"):
        if schema.get(combined):
            return _value(name, {**schema[combined][0], **schema, combined: None}, refs)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "array":
        return [_value(stem, schema.get("items", {}), refs)]
    if kind == "object" and "properties" in schema:
        return _fields(schema, refs)
    if kind == "integer":
        return 5
    if kind == "number":
        return 5.0
    if kind == "boolean":
        return True
    if kind == "object":
        return {}
    if schema.get("format") == "email" or "email" in name:
        return f"x-{GLOBEX_TAG}@example.com"
    if schema.get("format") == "date-time":
        return "2030-01-01T10:00:00Z"
    return f"{GLOBEX_TAG} {name}"


def _fields(schema: dict[str, Any], refs: dict[str, int]) -> dict[str, Any]:
    props = schema.get("properties", {})
    return {
        name: _value(name, prop, refs) for name, prop in props.items() if not prop.get("readOnly")
    }


def api_body(op: Operation, acme: Objects) -> dict[str, Any]:
    """A body for the operation, valid where it can be, every row it names one of acme's."""
    return _fields(op.body or {}, _ref_ids(acme))


def dashboard_form(acme: Objects) -> dict[str, Any]:
    """A form that most of the dashboard's forms would accept, naming acme's rows."""
    refs = _ref_ids(acme)
    form: dict[str, Any] = {
        "name": f"{GLOBEX_TAG} name",
        "email": f"x-{GLOBEX_TAG}@example.com",
        "value": f"x-{GLOBEX_TAG}@example.com",
        "values": f"x-{GLOBEX_TAG}@example.com",
        "subject": f"{GLOBEX_TAG} subject",
        "text_body": f"{GLOBEX_TAG} body",
        "html_body": f"<p>{GLOBEX_TAG}</p>",
        "first_name": f"{GLOBEX_TAG}",
        "description": f"{GLOBEX_TAG}",
        "daily_limit": "7",
        "weight": "1",
        "delay_amount": "1",
        "delay_unit": "days",
        "reason": "manual",
        "confirm": "yes",
    }
    form.update({stem: pk for stem, pk in refs.items()})
    form.update({f"{stem}_id": pk for stem, pk in refs.items()})
    form["lead_lists"] = refs["lead_list"]
    form["mailboxes"] = refs["mailbox"]
    return form


def _leaks(body: str, *, on_acme_host: bool) -> list[str]:
    # On acme's own host the workspace's name is public: its login page greets visitors with it.
    markers = [m for m in ACME_MARKERS if not (on_acme_host and m == ACME_NAME)]
    return [marker for marker in markers if marker.lower() in body.lower()]


class Walker:
    """Sends requests, checks each answer, collects what went wrong."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.fingerprint = Fingerprint(world.cast.tenant)
        self.sent = 0

    def fail(self, where: str, problem: str) -> None:
        self.world.failures.append(f"{where}: {problem}")

    def send(
        self,
        client: Client,
        method: str,
        url: str,
        *,
        allowed: set[int] | None,
        data: Any = None,
        json: bool = False,
    ) -> HttpResponse:
        where = f"{method} {url} [{client.defaults.get('HTTP_HOST')}]"
        kwargs: dict[str, Any] = {}
        if data is not None:
            kwargs = {"data": data, "format": "json"} if json else {"data": data}
        response = getattr(client, method.lower())(url, **kwargs)
        self.sent += 1
        connection.set_schema_to_public()
        if response.status_code >= 500:
            self.fail(where, f"server error {response.status_code}")
        if allowed is not None and response.status_code not in allowed:
            self.fail(where, f"answered {response.status_code}, expected one of {sorted(allowed)}")
        if response.status_code == 302:
            location = response["Location"]
            if ACME_TAG in location:
                self.fail(where, f"redirected to {location}")
        on_acme_host = client.defaults.get("HTTP_HOST") == host_of(self.world.cast.tenant)
        leaked = _leaks(_body(response), on_acme_host=on_acme_host) if method != "HEAD" else []
        if leaked:
            self.fail(where, f"body holds acme's {leaked}")
        if method not in ("GET", "HEAD"):
            changed = self.fingerprint.changed()
            if changed:
                self.fail(where, f"changed acme's data in {changed}")
        return response


def _object_page(page: Page) -> bool:
    return bool(set(page.params) - {"action"})


def _dashboard_pages() -> Iterator[Page]:
    for page in dashboard_pages():
        if page.name.split(":")[-1] not in PUBLIC_PAGES:
            yield page


# --- Tests ----------------------------------------------------------------------------------


def test_it_can_fill_every_route(world: World) -> None:
    problems = []
    for page in dashboard_pages():
        try:
            page_url(page, world.acme)
        except Unfillable as error:
            problems.append(str(error))
    for op in api_operations():
        try:
            api_url(op, world.acme)
            api_body(op, world.acme)
        except Unfillable as error:
            problems.append(f"{op}: {error}")
    assert problems == [], "\n".join(problems)


def test_it_finds_every_api_route_in_the_openapi_document() -> None:
    """An API route missing from the schema would be missed by the walk below."""
    reached = set()
    for op in api_operations():
        path = re.sub(r"\{\w+\}", "1", op.path)
        reached.add(resolve(path).url_name)
    missing = {
        route: name
        for route, name in api_url_patterns()
        if name not in reached and name not in NOT_IN_SCHEMA
    }
    assert missing == {}, missing
    assert len(api_operations()) >= 80


def test_it_points_every_object_route_at_a_row_the_owner_can_see(world: World) -> None:
    """The control: acme's owner reaches every row the outsider is refused, so each 404 below
    is scoping at work, not a wrong id."""
    cast, acme = world.cast, world.acme
    owner = client_for(cast.owner, cast.tenant)
    api = client_for(cast.owner, cast.tenant, api=True)
    wrong = []
    for page in _dashboard_pages():
        if _object_page(page) and page.name.split(":")[0] != "sandbox":
            response = owner.get(page_url(page, acme))
            if response.status_code not in (200, 302, 405):
                wrong.append(f"{page}: {response.status_code}")
    for op in api_operations():
        if op.method == "GET" and op.params:
            response = api.get(api_url(op, acme))
            body = _body(response)
            if response.status_code != 200:
                wrong.append(f"{op}: {response.status_code}")
            elif "id" in op.params and not _leaks(body, on_acme_host=True):
                wrong.append(f"{op}: acme's row is not in the answer")
    connection.set_schema_to_public()
    assert wrong == [], "\n".join(wrong)


def _walk_dashboard(walker: Walker, client: Client, *, on_acme_host: bool) -> None:
    acme = walker.world.acme
    form = dashboard_form(acme)
    for page in _dashboard_pages():
        url = page_url(page, acme)
        if on_acme_host:
            # A non-member is an anonymous visitor here: sent to log in, or refused.
            reads = writes = {302, 401, 403, 404, 405}
        elif _object_page(page):
            # Acme's ids do not exist on globex's host (405: a POST-only route).
            reads, writes = {404, 405}, {404, 405}
        else:
            reads, writes = None, None  # globex's own pages and forms: any answer below 500
        for method in ("GET", "HEAD"):
            response = walker.send(client, method, url, allowed=reads)
            if on_acme_host and response.status_code == 302:
                if "/login/" not in response["Location"]:
                    walker.fail(f"{method} {url}", f"redirected to {response['Location']}")
        walker.send(client, "POST", url, allowed=writes, data=form)


def _walk_api(walker: Walker, client: Client, *, on_acme_host: bool) -> None:
    acme = walker.world.acme
    for op in api_operations():
        url = api_url(op, acme)
        if on_acme_host:
            allowed: set[int] | None = {401, 403}
        elif op.params:
            allowed = {404}
        else:
            allowed = None  # globex's own lists and creations
        data = api_body(op, acme) if op.method in ("POST", "PUT", "PATCH") else None
        walker.send(client, op.method, url, allowed=allowed, data=data, json=True)
        if op.method == "GET" and op.params:
            walker.send(client, "HEAD", url, allowed=allowed)


def _assert_clean(world: World, walker: Walker) -> None:
    cross = _cross_tenant_role_refs()
    connection.set_schema_to_public()
    assert walker.sent > 100, walker.sent
    assert cross == [], cross
    assert world.failures == [], f"{len(world.failures)} problems:\n" + "\n".join(world.failures)


def test_it_shows_and_changes_nothing_of_acme_to_the_outsider_on_globex_host(world: World) -> None:
    cast = world.cast
    walker = Walker(world)
    _walk_dashboard(walker, client_for(cast.outsider, cast.other_tenant), on_acme_host=False)
    api = client_for(cast.outsider, cast.other_tenant, api=True)
    _walk_api(walker, api, on_acme_host=False)
    # Still logged in: the answers above were to the outsider, not to an anonymous visitor.
    assert client_for(cast.outsider, cast.other_tenant).get("/").status_code == 200
    _assert_clean(world, walker)


def test_it_shows_and_changes_nothing_to_the_outsider_on_acmes_host(world: World) -> None:
    cast = world.cast
    walker = Walker(world)
    _walk_dashboard(walker, client_for(cast.outsider, cast.tenant), on_acme_host=True)
    _walk_api(walker, client_for(cast.outsider, cast.tenant, api=True), on_acme_host=True)
    _assert_clean(world, walker)


def test_it_shows_and_changes_nothing_of_acme_to_a_globex_api_key(world: World) -> None:
    walker = Walker(world)
    for host, on_acme_host in ((world.cast.other_tenant, False), (world.cast.tenant, True)):
        client = APIClient(HTTP_HOST=host_of(host))
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.globex_key}")
        _walk_api(walker, client, on_acme_host=on_acme_host)
    _assert_clean(world, walker)


def test_it_lists_only_globex_rows_to_the_outsider(world: World) -> None:
    """The list endpoints answer globex's rows: the walk above proves acme's are absent, this
    proves the lists are not simply empty."""
    cast = world.cast
    api = client_for(cast.outsider, cast.other_tenant, api=True)
    listed = {}
    for op in api_operations():
        if op.is_list and not op.params:
            response = api.get(api_url(op, world.globex))
            listed[op.path] = GLOBEX_TAG in _body(response)
    connection.set_schema_to_public()
    assert len(listed) >= 10, listed
    # Lists whose rows carry no name (events, members show users' emails; plans are global).
    nameless = {f"{API_PREFIX}{name}/" for name in ("events", "members", "plans")}
    # Payments exist only from Stripe webhooks; tests/stripe/test_isolation.py covers them.
    nameless.add(f"{API_PREFIX}billing/invoices/")
    assert [path for path, seen in listed.items() if not seen and path not in nameless] == []
