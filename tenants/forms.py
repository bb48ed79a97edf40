"""Account forms: signup, login, password reset.

They only shape input; the rules (slug, email, password strength, uniqueness) live in
tenants.services.accounts, whose ValidationFailed fields are put back on the form by the view.
"""

from __future__ import annotations

from django import forms

from penguinmails.errors import ValidationFailed


class ServiceErrorsMixin:
    """Shows a service's ValidationFailed on the form, field by field."""

    def add_service_errors(
        self, exc: ValidationFailed, *, aliases: dict[str, str] | None = None
    ) -> None:
        form: forms.Form = self  # type: ignore[assignment]
        aliases = aliases or {}
        if not exc.fields:
            form.add_error(None, exc.message)
            return
        for field, messages in exc.fields.items():
            name = aliases.get(field, field)
            target = name if name in form.fields else None
            for message in messages:
                form.add_error(target, message)


class SignupForm(ServiceErrorsMixin, forms.Form):
    workspace_name = forms.CharField(
        label="Workspace name",
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "Acme Agency", "autofocus": True}),
    )
    slug = forms.CharField(
        label="Workspace address",
        max_length=40,
        widget=forms.TextInput(attrs={"placeholder": "acme", "autocapitalize": "none"}),
    )
    full_name = forms.CharField(label="Your name", max_length=200)
    email = forms.CharField(
        label="Work email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters, not a common or all-digit password.",
    )


class LoginForm(ServiceErrorsMixin, forms.Form):
    email = forms.CharField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class PasswordResetRequestForm(forms.Form):
    email = forms.CharField(
        label="Email",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class SetPasswordForm(ServiceErrorsMixin, forms.Form):
    new_password = forms.CharField(
        label="New password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "autofocus": True}),
    )
    new_password_again = forms.CharField(
        label="New password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        first, second = data.get("new_password"), data.get("new_password_again")
        if first and second and first != second:
            self.add_error("new_password_again", "The two passwords differ.")
        return data
