"""Outgoing webhooks for integrators (docs/webhooks.md)."""
