"""The local Stripe (dev, demo, tests): localstripe plus what it lacks, on one aiohttp server.

localstripe (PyPI) is a stateful fake of Stripe's HTTP API: customers, products, plans,
subscriptions, invoices, payment methods, charges, refunds, events, list pagination, `expand`,
error objects, and webhooks signed with Stripe's real `Stripe-Signature` scheme. What it lacks and
this module adds, on the same server and the same in-memory store (docs/billing.md):

- Prices (`/v1/prices`): stored as localstripe plans whose id is the price id (Stripe itself
  accepts a plan id wherever a price id goes), answered in the price shape; subscription items
  carry `price` beside their legacy `plan`, and `items[][price]` is accepted on subscription
  updates.
- Checkout Sessions (`/v1/checkout/sessions`) and a "pay" page (`/pay/<id>`) that completes one:
  attaches a test card, creates the subscription (trial included), sends
  `checkout.session.completed`.
- Customer Portal sessions (`/v1/billing_portal/sessions`) and a portal page (`/portal/<id>`)
  that cancels the subscription and goes back to `return_url`.
- `invoice.paid` beside localstripe's `invoice.payment_succeeded`.
- Idempotency keys: a POST repeated with the same `Idempotency-Key` answers the first response.
- No state on disk: localstripe pickles its store to a fixed /tmp path on every write, which
  would mix the stores of concurrent servers; here the store lives in memory only.
"""

from __future__ import annotations

import asyncio
import html
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from localstripe import resources as ls
from localstripe import server as ls_server
from localstripe.errors import UserError
from localstripe.webhooks import register_webhook, schedule_webhook

from penguinmails.sandbox import stripe_invoices
from penguinmails.sandbox.stripe_ready import READY_HOOKS

# localstripe persists its store to /tmp/localstripe.pickle on every write; keep it in memory.
ls.store.dump_to_disk = lambda: None  # type: ignore[method-assign]
ls.store.try_load_from_disk = lambda: None  # type: ignore[method-assign]

TEST_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"  # attaches, then every charge fails (localstripe's rule)


def _price_shape(plan: Any) -> dict[str, Any]:
    return {
        "id": plan.id,
        "object": "price",
        "active": plan.active,
        "currency": plan.currency,
        "unit_amount": plan.amount,
        "product": plan.product,
        "nickname": plan.nickname,
        "metadata": dict(plan.metadata or {}),
        "lookup_key": (plan.metadata or {}).get("lookup_key"),
        "recurring": {
            "interval": plan.interval,
            "interval_count": plan.interval_count,
            "trial_period_days": plan.trial_period_days,
        },
        "type": "recurring",
        "created": plan.created,
        "livemode": False,
    }


# Subscription items (and so subscriptions) export their price beside the legacy plan.
ls.SubscriptionItem.price = property(lambda self: _price_shape(self.plan))  # type: ignore[attr-defined]


def _emit(event: Any) -> None:
    schedule_webhook(event)
    if event.type == "invoice.payment_succeeded":
        paid = ls.Event("invoice.paid", ls.Invoice._api_retrieve(event.data["object"]["id"]))
        schedule_webhook(paid)


# Every localstripe object's events go through `_emit` (localstripe's own extension point: the
# module-level name its resources call).
ls.schedule_webhook = _emit


class CheckoutSession(ls.StripeObject):  # type: ignore[misc]
    """A Checkout Session in subscription mode; completed by the pay page."""

    object = "checkout.session"
    _id_prefix = "cs_test_"

    def __init__(self, **data: Any) -> None:
        line_items = data.get("line_items") or []
        if data.get("mode") != "subscription" or len(line_items) != 1:
            raise UserError(400, "mode=subscription with one line item is supported")
        price = line_items[0].get("price")
        ls.Plan._api_retrieve(price or "")
        customer = data.get("customer")
        if customer:
            ls.Customer._api_retrieve(customer)
        for url in ("success_url", "cancel_url"):
            if not str(data.get(url) or "").startswith("http"):
                raise UserError(400, f"Missing required param: {url}.")
        super().__init__()
        self.mode = "subscription"
        self.customer = customer
        self.client_reference_id = data.get("client_reference_id")
        self.metadata = dict(data.get("metadata") or {})
        self.success_url = data["success_url"]
        self.cancel_url = data["cancel_url"]
        self.status = "open"
        self.payment_status = "unpaid"
        self.subscription = None
        self._price = price
        subscription_data = data.get("subscription_data") or {}
        self._trial_days = ls.try_convert_to_int(subscription_data.get("trial_period_days"))
        self._sub_metadata = dict(subscription_data.get("metadata") or {})
        self.url = ""  # filled by the server, which knows its own address

    def _complete(self, card: str) -> None:
        if self.status != "open":
            raise UserError(400, "This Checkout Session is no longer open.")
        if not self.customer:
            self.customer = ls.Customer(metadata=self.metadata).id
        method = ls.PaymentMethod(
            type="card",
            card={"number": card, "exp_month": "12", "exp_year": "2040", "cvc": "123"},
        )
        ls.PaymentMethod._api_attach(method.id, customer=self.customer)
        ls.Customer._api_update(
            self.customer, invoice_settings={"default_payment_method": method.id}
        )
        sub = ls.Subscription(
            customer=self.customer,
            items=[{"plan": self._price}],
            metadata=self._sub_metadata or self.metadata,
            trial_period_days=self._trial_days,
        )
        if self._trial_days:
            sub.status = "trialing"
            sub.trial_start = int(time.time())
            sub.trial_end = sub.trial_start + self._trial_days * 86400
        self.subscription = sub.id
        self.status = "complete"
        self.payment_status = "paid" if sub.status in ("active", "trialing") else "unpaid"
        _emit(ls.Event("checkout.session.completed", self))


class PortalSession(ls.StripeObject):  # type: ignore[misc]
    """A Customer Portal session: the portal page cancels the customer's subscriptions."""

    object = "billing_portal.session"
    _id_prefix = "bps_"

    def __init__(self, customer: str | None = None, return_url: str | None = None) -> None:
        ls.Customer._api_retrieve(customer or "")
        if not str(return_url or "").startswith("http"):
            raise UserError(400, "Missing required param: return_url.")
        super().__init__()
        self.customer = customer
        self.return_url = return_url
        self.url = ""


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(obj: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(obj, status=status)


def build_app(*, base_url: Callable[[], str]) -> web.Application:
    """The server: our routes first, then every localstripe route, behind its middlewares."""
    app = web.Application(
        middlewares=[
            _idempotency(),
            ls_server.error_middleware,
            _auth,
        ]
    )
    app.on_response_prepare.append(ls_server.add_cors_headers)
    r = app.router

    async def create_price(request: web.Request) -> web.Response:
        data = await ls_server.get_post_data(request) or {}
        recurring = data.pop("recurring", None) or {}
        product_data = data.pop("product_data", None)
        metadata = dict(data.pop("metadata", None) or {})
        if data.get("lookup_key"):
            metadata["lookup_key"] = data.pop("lookup_key")
        data.pop("expand", None)
        plan = ls.Plan(
            id="price_" + ls.random_id(14),
            amount=data.pop("unit_amount", None),
            currency=data.pop("currency", None),
            product=data.pop("product", None) or product_data,
            interval=recurring.get("interval"),
            interval_count=recurring.get("interval_count", 1),
            trial_period_days=recurring.get("trial_period_days"),
            nickname=data.pop("nickname", None),
            metadata=metadata,
            **data,
        )
        return _json(_price_shape(plan))

    async def get_price(request: web.Request) -> web.Response:
        return _json(_price_shape(ls.Plan._api_retrieve(request.match_info["id"])))

    async def update_price(request: web.Request) -> web.Response:
        data = await ls_server.get_post_data(request) or {}
        data.pop("expand", None)
        if "active" in data:  # form bodies carry "false"; localstripe would store the string
            data["active"] = ls.try_convert_to_bool(data["active"])
        plan = ls.Plan._api_update(request.match_info["id"], **data)
        return _json(_price_shape(plan))

    async def list_prices(request: web.Request) -> web.Response:
        query = ls_server.unflatten_data(request.query)
        product = query.pop("product", None)
        lookup = set(query.pop("lookup_keys", None) or [])
        plans = [p for k, p in ls.store.items() if k.startswith("plan:price_")]
        plans = [p for p in plans if product is None or p.product == product]
        plans = [p for p in plans if not lookup or (p.metadata or {}).get("lookup_key") in lookup]
        return _json(_page(request, [_price_shape(p) for p in plans], "/v1/prices"))

    async def update_subscription(request: web.Request) -> web.Response:
        data = await ls_server.get_post_data(request) or {}
        expand = data.pop("expand", None)
        data.pop("proration_behavior", None)  # localstripe prorates by itself
        data.pop("payment_behavior", None)
        for item in data.get("items") or []:
            if "price" in item:
                item["plan"] = item.pop("price")
            item.pop("id", None)
        sub = ls.Subscription._api_update(request.match_info["id"], **data)
        _emit(ls.Event("customer.subscription.updated", sub))  # localstripe sends none
        return _json(sub._export(expand=expand))

    async def create_checkout(request: web.Request) -> web.Response:
        data = await ls_server.get_post_data(request) or {}
        data.pop("expand", None)
        session = CheckoutSession(**data)
        session.url = f"{base_url()}/pay/{session.id}"
        return _json(session._export())

    async def get_checkout(request: web.Request) -> web.Response:
        return _json(_get(CheckoutSession, request.match_info["id"])._export())

    async def create_portal(request: web.Request) -> web.Response:
        data = await ls_server.get_post_data(request) or {}
        session = PortalSession(data.get("customer"), data.get("return_url"))
        session.url = f"{base_url()}/portal/{session.id}"
        return _json(session._export())

    r.add_post("/v1/prices", create_price)
    r.add_get("/v1/prices", list_prices)
    r.add_get("/v1/prices/{id}", get_price)
    r.add_post("/v1/prices/{id}", update_price)
    r.add_post("/v1/subscriptions/{id}", update_subscription)
    r.add_post("/v1/checkout/sessions", create_checkout)
    r.add_get("/v1/checkout/sessions/{id}", get_checkout)
    r.add_post("/v1/billing_portal/sessions", create_portal)
    r.add_post("/_config/data/clear", _clear)
    _add_pages(app)
    stripe_invoices.install(
        app,
        base_url=base_url,
        page=PAGE,
        cards={"ok": TEST_CARD, "fail": DECLINED_CARD},
        portal=lambda session_id: _get(PortalSession, session_id),
    )
    for route in ls_server.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path and not _shadowed(app, route.method, path):
            r.add_route(route.method, path, route.handler)
    return app


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The API needs a secret key (localstripe's check); the pay and portal pages, like
    Stripe's hosted pages, are reached by their unguessable session URL alone."""
    if request.path.startswith(("/pay/", "/portal/", "/invoice/")):
        return await handler(request)
    return await ls_server.auth_middleware(request, handler)


def _shadowed(app: web.Application, method: str, path: str) -> bool:
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        if route.method == method and (info.get("path") or info.get("formatter")) == path:
            return True
    return False


async def _clear(request: web.Request) -> web.Response:
    ls.store.clear()
    return web.Response(text="cleared")


def _get(cls: Any, id_: str) -> Any:
    obj = ls.store.get(f"{cls.object}:{id_}")
    if obj is None:
        raise UserError(404, f"No such {cls.object}: '{id_}'")
    return obj


def _page(request: web.Request, rows: list[dict[str, Any]], url: str) -> dict[str, Any]:
    limit = int(request.query.get("limit", "10") or 10)
    after = request.query.get("starting_after")
    if after:
        ids = [row["id"] for row in rows]
        rows = rows[ids.index(after) + 1 :] if after in ids else []
    return {"object": "list", "url": url, "data": rows[:limit], "has_more": len(rows) > limit}


def _idempotency() -> Any:
    """Answer a POST repeated with the same Idempotency-Key with the first answer (24 h)."""
    seen: dict[str, tuple[float, int, bytes]] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        key = f"{request.path}:{key}"
        now = time.time()
        if key in seen and now - seen[key][0] < 86400:
            _, status, body = seen[key]
            return web.Response(
                body=body,
                status=status,
                content_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        response = await handler(request)
        if isinstance(response, web.Response) and response.body is not None:
            seen[key] = (now, response.status, bytes(response.body))  # type: ignore[arg-type]
        return response

    return middleware


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:2em auto"><h1>{title}</h1>{body}
</body></html>"""


def _add_pages(app: web.Application) -> None:
    async def pay_page(request: web.Request) -> web.Response:
        session = _get(CheckoutSession, request.match_info["id"])
        price = ls.Plan._api_retrieve(session._price)
        amount = f"{price.amount / 100:.2f} {price.currency.upper()} / {price.interval}"
        body = (
            f"<p>Local Stripe test checkout: {html.escape(amount)}"
            f"{' after a trial' if session._trial_days else ''}.</p>"
            f'<form method="post"><button name="card" value="{TEST_CARD}">Pay</button> '
            f'<button name="card" value="{DECLINED_CARD}">Pay with a card that will fail'
            f'</button></form><p><a href="{html.escape(session.cancel_url)}">Cancel</a></p>'
        )
        return web.Response(text=PAGE.format(title="Pay", body=body), content_type="text/html")

    async def pay(request: web.Request) -> web.Response:
        session = _get(CheckoutSession, request.match_info["id"])
        form = await request.post()
        session._complete(str(form.get("card") or TEST_CARD))
        raise web.HTTPSeeOther(session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id))

    async def portal_page(request: web.Request) -> web.Response:
        session = _get(PortalSession, request.match_info["id"])
        subs = [
            s
            for k, s in ls.store.items()
            if k.startswith("subscription:")
            and s.customer == session.customer
            and s.status != "canceled"
        ]
        rows = "".join(
            f"<li>{html.escape(s.id)}: {html.escape(s.status)} "
            f'<form method="post" style="display:inline"><button name="cancel" '
            f'value="{html.escape(s.id)}">Cancel subscription</button></form> '
            f"{stripe_invoices.renew_buttons(session.id, s.id)}</li>"
            for s in subs
        )
        body = (
            f"<ul>{rows or '<li>No subscription.</li>'}</ul>"
            f'<p><a href="{html.escape(session.return_url)}">Return</a></p>'
        )
        return web.Response(
            text=PAGE.format(title="Billing portal", body=body), content_type="text/html"
        )

    async def portal_action(request: web.Request) -> web.Response:
        session = _get(PortalSession, request.match_info["id"])
        form = await request.post()
        sub = _get(ls.Subscription, str(form.get("cancel") or ""))
        if sub.customer != session.customer:
            raise UserError(404, "Not Found")
        ls.Subscription._api_delete(sub.id)
        raise web.HTTPSeeOther(session.return_url)

    app.router.add_get("/pay/{id}", pay_page)
    app.router.add_post("/pay/{id}", pay)
    app.router.add_get("/portal/{id}", portal_page)
    app.router.add_post("/portal/{id}", portal_action)


class LocalStripe:
    """The server on a thread of its own (tests, `manage.py sandbox stripe`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def webhook(self, url: str, secret: str, name: str = "penguinmails") -> None:
        """Send every event to `url`, signed with `secret` (Stripe's scheme)."""
        register_webhook(name, url, secret, None)

    def start(self) -> LocalStripe:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def boot() -> None:
            self._runner = web.AppRunner(build_app(base_url=lambda: self.url))
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
            server = site._server
            if self.port == 0 and server is not None and server.sockets:  # type: ignore[attr-defined]
                self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            ready.set()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(boot())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="local-stripe", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the local Stripe server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None


def serve(
    host: str, port: int, *, webhook_url: str, webhook_secret: str, say: Callable[[str], None]
) -> None:
    """`manage.py sandbox stripe`: run until SIGINT/SIGTERM (port 0: a free port)."""
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise OSError(f"the local Stripe listens on loopback only, not {host}")
    server = LocalStripe(host, port).start()
    if webhook_url and webhook_secret:
        server.webhook(webhook_url, webhook_secret)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    target = webhook_url if webhook_url and webhook_secret else "nowhere (no secret)"
    say(f"Local Stripe on {server.url} (STRIPE_API_BASE), webhooks to {target}")
    for hook in READY_HOOKS:
        try:
            hook(server.url)
        except Exception as exc:  # noqa: BLE001 - the server runs on; the error is shown
            say(f"Local Stripe: {getattr(hook, '__name__', hook)} failed: {exc}")
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
        say("Local Stripe stopped.")
