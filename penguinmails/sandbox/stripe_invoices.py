"""The local Stripe's hosted invoice page and renewals, for the dunning walk-through (dev, demo,
tests; docs/billing.md, "The local Stripe").

- Every invoice carries `hosted_invoice_url` (`/invoice/<id>`, like Stripe's hosted invoice page):
  it shows the amount and pays an open invoice with a working card or one that fails.
- `/portal/<id>/renew`: the portal's "Simulate the next renewal" buttons: the customer's card is
  replaced (working or failing), the subscription's next invoice is created and charged at once.
  A failing charge makes the subscription past_due and sends `invoice.payment_failed`; paying the
  invoice later makes it active again and sends `invoice.paid` (localstripe's own rules).
- Invoice previews (`POST /v1/invoices/create_preview`, `GET /v1/invoices/upcoming`, the billing
  page's "Next invoice") change nothing, as at Stripe: localstripe's attach the customer's pending
  invoice items (a plan change's proration) to the discarded preview, so the next real invoice
  would lose them.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from aiohttp import web
from localstripe import resources as ls
from localstripe import server as ls_server
from localstripe.errors import UserError

_base: list[Callable[[], str]] = []


def _hosted_url(invoice: Any) -> str | None:
    if not _base or not getattr(invoice, "id", None):
        return None
    return f"{_base[-1]()}/invoice/{invoice.id}"


ls.Invoice.hosted_invoice_url = property(_hosted_url)  # type: ignore[attr-defined]


def use_card(customer: str, card: str) -> None:
    """Attach a test card to the customer and make it the default for invoices."""
    method = ls.PaymentMethod(
        type="card", card={"number": card, "exp_month": "12", "exp_year": "2040", "cvc": "123"}
    )
    ls.PaymentMethod._api_attach(method.id, customer=customer)
    ls.Customer._api_update(customer, invoice_settings={"default_payment_method": method.id})


def charge(invoice_id: str) -> Any:
    """Pay an open invoice with the customer's default card, as Stripe's automatic collection
    does. localstripe's pay route swallows a declined charge; here it is reported as Stripe
    does: `invoice.payment_failed`, and a renewal's subscription goes past_due."""
    invoice = ls.Invoice._api_pay_invoice(invoice_id)
    pi = ls.PaymentIntent._api_retrieve(invoice.payment_intent) if invoice.payment_intent else None
    failed = pi is not None and pi.latest_charge is not None and pi.latest_charge.status == "failed"
    if invoice.status == "open" and failed:
        invoice._on_payment_failure_now()
    return invoice


def renew(subscription_id: str, card: str) -> Any:
    """Charge the subscription's next invoice now with `card`; returns the invoice."""
    sub = ls.Subscription._api_retrieve(subscription_id)
    use_card(sub.customer, card)
    invoice = ls.Invoice._api_create(customer=sub.customer, subscription=sub.id)
    return charge(invoice.id)


def _without_side_effects(preview: Callable[..., Any]) -> Callable[..., Any]:
    def run(customer: Any = None, **data: Any) -> Any:
        listed = ls.InvoiceItem._api_list_all(None, customer=customer, limit=99)._list
        pending = [item for item in listed if item.invoice is None]
        try:
            return preview(customer=customer, **data)
        finally:
            for item in pending:
                item.invoice = None

    return run


def install(
    app: web.Application,
    *,
    base_url: Callable[[], str],
    page: str,
    cards: dict[str, str],
    portal: Callable[[str], Any],
) -> None:
    """Add the invoice page and the renewal route to the local Stripe's app (`portal` finds a
    portal session by id)."""
    _base.append(base_url)

    def _invoice(request: web.Request) -> Any:
        found = ls.store.get(f"invoice:{request.match_info['id']}")
        if found is None:
            raise UserError(404, "No such invoice")
        return found

    async def invoice_page(request: web.Request) -> web.Response:
        inv = _invoice(request)
        amount = f"{inv.total / 100:.2f} {str(inv.currency).upper()}"
        buttons = ""
        if inv.status == "open":
            buttons = (
                f'<form method="post"><button name="card" value="{cards["ok"]}">Pay</button> '
                f'<button name="card" value="{cards["fail"]}">Pay with a card that will fail'
                "</button></form>"
            )
        body = (
            f'<p id="invoice">Invoice {html.escape(inv.id)}: {html.escape(amount)}, '
            f"<strong>{html.escape(str(inv.status))}</strong>.</p>{buttons}"
        )
        return web.Response(text=page.format(title="Invoice", body=body), content_type="text/html")

    async def pay_invoice(request: web.Request) -> web.Response:
        inv = _invoice(request)
        form = await request.post()
        use_card(inv.customer, str(form.get("card") or cards["ok"]))
        charge(inv.id)
        raise web.HTTPSeeOther(f"/invoice/{inv.id}")

    async def renew_action(request: web.Request) -> web.Response:
        session = portal(request.match_info["id"])
        form = await request.post()
        sub = ls.store.get("subscription:" + str(form.get("subscription") or ""))
        if sub is None or sub.customer != session.customer:
            raise UserError(404, "Not Found")
        renew(sub.id, cards["fail"] if form.get("fail") else cards["ok"])
        raise web.HTTPSeeOther(session.return_url)

    for method, url, preview in (
        ("POST", "/v1/invoices/create_preview", ls.Invoice._api_create_preview_invoice),
        ("GET", "/v1/invoices/upcoming", ls.Invoice._api_upcoming_invoice),
    ):
        app.router.add_route(method, url, ls_server.api_extra(_without_side_effects(preview), url))
    app.router.add_get("/invoice/{id}", invoice_page)
    app.router.add_post("/invoice/{id}", pay_invoice)
    app.router.add_post("/portal/{id}/renew", renew_action)


def renew_buttons(session_id: str, subscription_id: str) -> str:
    """The portal page's "Simulate the next renewal" forms for one subscription."""
    sub = html.escape(subscription_id)
    return (
        f'<form method="post" action="/portal/{html.escape(session_id)}/renew" '
        f'style="display:inline"><input type="hidden" name="subscription" value="{sub}">'
        "<button>Simulate the next renewal</button> "
        '<button name="fail" value="1">Simulate a renewal whose payment fails</button></form>'
    )
