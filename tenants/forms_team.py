"""Forms of the team, roles, settings and invitation pages.

They only parse and render input; the rules (who may, what is valid) live in the services, whose
ValidationFailed field errors are copied back onto the form with `apply_errors`.
"""

from __future__ import annotations

from typing import Any, cast

from django import forms

from penguinmails.errors import ValidationFailed
from tenants.models import Role
from tenants.permissions import Area, BuiltinRole, Level


def _role_field(form: forms.Form) -> forms.TypedChoiceField:
    """The form's `role` field (declared as a TypedChoiceField; `form.fields` is typed `Field`)."""
    return cast(forms.TypedChoiceField, form.fields["role"])


def role_choices(roles: list[Role], *, allow_owner: bool = True) -> list[tuple[int, str]]:
    return [
        (role.pk, role.name)
        for role in roles
        if allow_owner or not (role.is_builtin and role.slug == BuiltinRole.OWNER)
    ]


def apply_errors(form: forms.Form, error: ValidationFailed) -> None:
    """Show a service's field errors on the form (unknown fields become form-wide errors)."""
    for field, messages in (error.fields or {"__all__": [error.message]}).items():
        target = field if field in form.fields else None
        for message in messages:
            form.add_error(target, message)


class InviteForm(forms.Form):
    email = forms.CharField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    role = forms.TypedChoiceField(coerce=int)

    def __init__(self, *args: Any, roles: list[Role], allow_owner: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _role_field(self).choices = role_choices(roles, allow_owner=allow_owner)
        member = next((r for r in roles if r.is_builtin and r.slug == BuiltinRole.MEMBER), None)
        if member is not None:
            self.fields["role"].initial = member.pk


class RoleChoiceForm(forms.Form):
    role = forms.TypedChoiceField(coerce=int)

    def __init__(self, *args: Any, roles: list[Role], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _role_field(self).choices = role_choices(roles)


class CustomRoleForm(forms.Form):
    """A custom role: a name and one level per area."""

    name = forms.CharField(max_length=100)
    description = forms.CharField(max_length=300, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for area in Area:
            # Not required: an area left out of the submission gets no access.
            self.fields[f"perm_{area.value}"] = forms.ChoiceField(
                label=area.label, choices=Level.choices, initial=Level.NONE, required=False
            )

    @classmethod
    def initial_for(cls, role: Role) -> dict[str, str]:
        initial = {"name": role.name, "description": role.description}
        initial.update({f"perm_{area.value}": role.level(area) for area in Area})
        return initial

    def permission_fields(self) -> list[forms.BoundField]:
        return [self[f"perm_{area.value}"] for area in Area]

    def permissions(self) -> dict[str, str]:
        return {
            area.value: self.cleaned_data.get(f"perm_{area.value}") or Level.NONE.value
            for area in Area
        }


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    role = forms.TypedChoiceField(coerce=int)

    def __init__(self, *args: Any, roles: list[Role], **kwargs: Any) -> None:
        # Own element ids: this form shares the settings page with the rename form, and two
        # `id_name` inputs would point both labels at the first.
        kwargs.setdefault("auto_id", "key_%s")
        super().__init__(*args, **kwargs)
        _role_field(self).choices = role_choices(roles, allow_owner=False)
        member = next((r for r in roles if r.is_builtin and r.slug == BuiltinRole.MEMBER), None)
        if member is not None:
            self.fields["role"].initial = member.pk


class RenameWorkspaceForm(forms.Form):
    name = forms.CharField(max_length=200, label="Workspace name")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "workspace_%s")
        super().__init__(*args, **kwargs)


class AcceptInvitationForm(forms.Form):
    """Existing account: password only. New account: full name and a new password."""

    full_name = forms.CharField(max_length=200, required=False, label="Full name")
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}), strip=False
    )

    def __init__(self, *args: Any, new_account: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if new_account:
            self.fields["full_name"].required = True
            self.fields["password"].label = "Choose a password"
            self.fields["password"].widget.attrs["autocomplete"] = "new-password"
        else:
            del self.fields["full_name"]
