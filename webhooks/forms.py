"""Dashboard form of an endpoint (the service validates the URL and the events again)."""

from __future__ import annotations

from django import forms

from webhooks.events import Event


class EndpointForm(forms.Form):
    url = forms.CharField(max_length=2000, label="URL", widget=forms.URLInput())
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(
        choices=Event.choices, widget=forms.CheckboxSelectMultiple, required=False
    )
