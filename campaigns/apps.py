from __future__ import annotations

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns (templates, leads, campaigns)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here: these modules read models, which exist only once apps are loaded.
        from campaigns import lifecycles  # noqa: F401 - declares (registers) the state machines
        from campaigns.demo import seed_demo
        from campaigns.demo_pool import seed_demo_pool
        from campaigns.home_panels import home_context
        from campaigns.services.feedback import on_inbound_classified
        from campaigns.services.inbox import unread_total
        from campaigns.services.protection import after_bump
        from campaigns.services.stats.rollups import AFTER_BUMP
        from campaigns.tracking.tokens import unsubscribe_tenant
        from deliverability.signals import inbound_classified
        from penguinmails.sandbox import scope
        from tenants import signals
        from tenants.home import register_panels
        from tenants.web import register_nav_badge

        # The workspace home page (tenants) shows campaigns' and the other apps' panels.
        register_panels(home_context)
        # The sidebar's Inbox entry shows the unread replies.
        register_nav_badge("inbox:index", unread_total)
        # The sandbox's mail pages attribute a captured campaign message by its signed token.
        scope.register_token_verifier(unsubscribe_tenant)
        # `tenants demo` (make run) asks us to seed the demo workspace.
        signals.demo_workspace_ready.connect(seed_demo, dispatch_uid="campaigns.demo")
        # ... and its warm-up partners, once the demo's mailboxes exist (docs/sandbox.md).
        signals.demo_workspace_ready.connect(seed_demo_pool, dispatch_uid="campaigns.demo_pool")
        # Mail read from the mailboxes (deliverability's poller): we act on what we own.
        inbound_classified.connect(on_inbound_classified, dispatch_uid="campaigns.feedback")
        # Automatic protection judges what each counted bounce or complaint touched.
        if after_bump not in AFTER_BUMP:
            AFTER_BUMP.append(after_bump)
        # Dunning (billing): running campaigns pause when an overdue payment's grace period
        # ends, and the same ones resume once it is paid.
        from billing.dunning_hooks import Level, register_dunning_hook
        from campaigns.services.billing_pause import pause_for_billing, resume_after_billing

        register_dunning_hook(
            "campaigns.running",
            Level.SENDING,
            stop=pause_for_billing,
            restart=resume_after_billing,
        )
