"""`POST /webhooks/stripe/` on the public host: verify, store once, enqueue (docs/billing.md).

Answers fast: 200 for a stored (or already stored) event, 400 with the reason and nothing stored
for a missing, wrong or too old signature.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.services.stripe_events import BadSignature, receive


@csrf_exempt  # Stripe signs the body instead
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    try:
        event, new = receive(request.body, request.headers.get("Stripe-Signature"))
    except BadSignature as exc:
        return JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=400)
    return JsonResponse({"received": event.event_id, "duplicate": not new})
