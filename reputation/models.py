"""Reputation models. The app is in SHARED_APPS and TENANT_APPS: IP-level records live in the
public schema beside the IPs, mailbox- and domain-level ones in the tenant's schema."""

from __future__ import annotations
