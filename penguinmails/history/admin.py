"""The admin's view of the transition log: one read-only panel any ModelAdmin adds (`history` in
its fields and readonly_fields), and the log itself, read-only, on the public host."""

from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from penguinmails import states
from penguinmails.history.models import Transition


class HistoryPanel:
    """Mixin for a ModelAdmin of a model with a StateMachine: a `history` read-only field that
    shows the object's moves, oldest first."""

    @admin.display(description="History")
    def history(self, obj: models.Model | None) -> SafeString:
        if obj is None or obj.pk is None:
            return format_html("{}", "—")
        rows = states.history(obj)
        if not rows:
            return format_html("{}", "No transitions yet.")
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (t.at.strftime("%Y-%m-%d %H:%M:%S"), t.from_label, t.to_label, t.actor, t.reason)
                for t in rows
            ),
        )
        return format_html(
            '<table class="history"><thead><tr><th>At</th><th>From</th><th>To</th>'
            "<th>By</th><th>Reason</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )


@admin.register(Transition)
class TransitionAdmin(admin.ModelAdmin):
    list_display = ("at", "object_type", "object_id", "from_status", "to_status", "actor")
    list_filter = ("object_type", "to_status")
    search_fields = ("=object_id", "reason", "actor")
    ordering = ("-at", "-id")
    readonly_fields = [f.name for f in Transition._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # written by penguinmails.states only

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
