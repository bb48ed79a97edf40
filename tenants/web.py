"""Dashboard plumbing of tenant hosts, shared by every app's views.

- `DashboardMiddleware` renders a DomainError raised by a view as an HTML page with the error's
  status (penguinmails.web.render_domain_error), and attaches `request.nav`: the sidebar entries
  the acting role may open.
- `area_required(area)` guards a view: login first, then the area's read permission. Pages refuse
  with 403 by themselves; hiding a nav entry is only a courtesy.

Areas whose features are not built have no page and no nav entry at all (warm-up and blacklist
monitoring come with later issues): the product offers only what exists. Entries name other
apps' pages by URL name only, so tenants imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import wraps
from typing import ParamSpec, TypeVar

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import NoReverseMatch, reverse
from django.utils.functional import SimpleLazyObject

from penguinmails.errors import DomainError
from penguinmails.web import render_domain_error
from tenants.permissions import Area, Level
from tenants.services.access import Principal, require

P = ParamSpec("P")
# Any response a guarded view returns: pages, redirects, streamed CSV exports.
R = TypeVar("R", bound=HttpResponseBase)


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    # Any of these areas readable shows the entry; empty means everyone in the workspace.
    areas: tuple[Area, ...] = ()
    section: str = ""
    debug_only: bool = False
    # The level one of `areas` must grant (the audit log needs write on Team).
    level: Level = Level.READ


NAV: tuple[NavEntry, ...] = (
    NavEntry("Home", "dashboard:home"),
    NavEntry("Inbox", "inbox:index", (Area.CAMPAIGNS,), "Outreach"),
    NavEntry("Campaigns", "campaigns:index", (Area.CAMPAIGNS,), "Outreach"),
    NavEntry("Leads", "campaigns:leads", (Area.LEADS,), "Outreach"),
    NavEntry("Templates", "campaigns:templates", (Area.TEMPLATES,), "Outreach"),
    NavEntry("Mailboxes", "deliverability:mailboxes", (Area.MAILBOXES,), "Deliverability"),
    NavEntry("Domains", "deliverability:domains", (Area.DOMAINS,), "Deliverability"),
    NavEntry("Reputation", "reputation:overview", (Area.WARMUP,), "Deliverability"),
    NavEntry("Infrastructure", "infrastructure:index", (Area.INFRASTRUCTURE,), "Account"),
    NavEntry("Billing", "billing:index", (Area.BILLING,), "Account"),
    NavEntry("Team", "dashboard:team", (Area.TEAM,), "Account"),
    NavEntry("Audit log", "dashboard:audit", (Area.TEAM,), "Account", level=Level.WRITE),
    NavEntry("Settings", "dashboard:settings", (Area.SETTINGS, Area.API_KEYS), "Account"),
    NavEntry("Webhooks", "webhooks:index", (Area.SETTINGS,), "Developer"),
    NavEntry("Sandbox mail", "sandbox:messages", (), "Developer", debug_only=True),
)


# A count shown beside an entry (the inbox's unread replies), registered by the app that owns
# the page at start-up (tenants imports none of them); called in the tenant's schema.
_BADGES: dict[str, Callable[[], int]] = {}


def register_nav_badge(url_name: str, count: Callable[[], int]) -> None:
    _BADGES[url_name] = count


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    section: str
    active: bool


def nav_for(request: HttpRequest) -> list[NavLink]:
    """The sidebar for this request: entries the principal may open, in order."""
    principal: Principal | None = getattr(request, "principal", None)
    if principal is None:
        return []
    links: list[NavLink] = []
    for entry in NAV:
        if entry.debug_only and not settings.DEBUG:
            continue
        if entry.areas and not any(principal.allows(a, entry.level) for a in entry.areas):
            continue
        try:
            url = reverse(entry.url_name)
        except NoReverseMatch:
            # A page another part of the product has not wired up yet: leave it out.
            continue
        badge = _BADGES.get(entry.url_name)
        count = badge() if badge is not None else 0
        label = f"{entry.label} ({count})" if count else entry.label
        links.append(NavLink(label, url, entry.section, False))
    # One active entry: the longest URL that prefixes the path (Leads at /campaigns/leads/ is
    # active, not Campaigns at /campaigns/ as well); "/" only for the home page itself.
    matches = [
        link.url
        for link in links
        if (request.path == link.url if link.url == "/" else request.path.startswith(link.url))
    ]
    best = max(matches, key=len, default=None)
    return [replace(link, active=True) if link.url == best else link for link in links]


class DashboardMiddleware:
    """Turns DomainErrors raised by dashboard views into error pages; attaches `request.nav`.

    The REST API handles DomainErrors in its own exception handler (one JSON error format), so
    they never reach this middleware from there.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Lazy: only pages that draw the sidebar pay for it, and after MembershipMiddleware ran.
        request.nav = SimpleLazyObject(lambda: nav_for(request))  # type: ignore[attr-defined]
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DomainError):
            return None
        return render_domain_error(request, exception)


def principal_of(request: HttpRequest) -> Principal:
    """The acting principal of a view guarded by `area_required` (always set there)."""
    principal: Principal | None = getattr(request, "principal", None)
    if principal is None:  # pragma: no cover - area_required redirects anonymous users first
        raise RuntimeError("principal_of() used outside a guarded tenant view")
    return principal


def area_required(
    *areas: Area, level: Level = Level.READ
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Login, then `level` on at least one of `areas` (403 page otherwise).

    With no areas, any active member of the workspace may open the page.
    """

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            request = args[0]
            assert isinstance(request, HttpRequest)
            principal = getattr(request, "principal", None)
            if principal is None:
                # Logged in but not a member here (or no workspace at all): nothing to show.
                raise Http404("Not a member of this workspace.")
            if areas:
                granted = next((a for a in areas if principal.allows(a, level)), areas[0])
                # PermissionDenied (403 page) when no area is granted; TenantSuspended (423)
                # for a write in a suspended workspace, before any input is even parsed.
                require(principal, granted, level)
            return view(*args, **kwargs)

        return login_required(guarded)  # type: ignore[return-value]

    return decorator
