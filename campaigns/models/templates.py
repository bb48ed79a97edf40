"""Email templates (docs/templates.md)."""

from __future__ import annotations

from django.db import models


class EmailTemplate(models.Model):
    """A reusable email a tenant writes: subject, HTML and text parts with `{{variables}}` and
    `{spin|tax}`, rendered per lead by `campaigns.rendering` (never by Django's template engine).
    `text_body` is generated from the HTML when the tenant leaves it empty (`text_generated`);
    `variables` caches the variable names found on the last save."""

    name = models.CharField(max_length=200, unique=True)
    subject = models.CharField(max_length=998)  # RFC 5322 line limit
    html_body = models.TextField(blank=True)
    text_body = models.TextField(blank=True)
    text_generated = models.BooleanField(default=False)
    variables = models.JSONField(default=list, blank=True)
    created_by_email = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
