"""django.contrib.admin with our site (INSTALLED_APPS names this class instead of the app).

Kept out of tenants/apps.py: Django picks an app's config from the AppConfig classes found
there, and this one belongs to the admin app.
"""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    """The staff admin: every add, change, delete and action audited (tenants.adminsite)."""

    default_site = "tenants.adminsite.StaffAdminSite"
