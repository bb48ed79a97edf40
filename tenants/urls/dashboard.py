"""Dashboard URLs of a tenant host: home, switcher, team, roles, settings."""

from __future__ import annotations

from django.urls import path

from tenants.views import audit, dashboard, team

app_name = "dashboard"
urlpatterns = [
    path("", dashboard.home, name="home"),
    path("switch/<slug:slug>/", dashboard.switch, name="switch"),
    path("team/", team.team, name="team"),
    path("team/invite/", team.invite, name="invite"),
    path(
        "team/invitations/<int:invitation_id>/revoke/",
        team.invitation_revoke,
        name="invitation_revoke",
    ),
    path("team/members/<int:membership_id>/role/", team.member_role, name="member_role"),
    path(
        "team/members/<int:membership_id>/deactivate/",
        team.member_deactivate,
        name="member_deactivate",
    ),
    path(
        "team/members/<int:membership_id>/reactivate/",
        team.member_reactivate,
        name="member_reactivate",
    ),
    path("team/roles/", team.roles, name="roles"),
    path("team/roles/new/", team.role_create, name="role_create"),
    path("team/roles/<int:role_id>/edit/", team.role_edit, name="role_edit"),
    path("team/roles/<int:role_id>/delete/", team.role_delete, name="role_delete"),
    path("audit/", audit.audit_log, name="audit"),
    path("settings/", dashboard.settings_page, name="settings"),
    path("settings/rename/", dashboard.rename, name="rename"),
    path("settings/api-keys/new/", dashboard.api_key_create, name="api_key_create"),
    path("settings/api-keys/<int:key_id>/revoke/", dashboard.api_key_revoke, name="api_key_revoke"),
]
