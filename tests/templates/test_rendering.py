"""The template engine alone: variables, fallbacks, custom fields, spintax, escaping, limits,
injection attempts and validation messages."""

from __future__ import annotations

import pytest

from campaigns import rendering
from campaigns.rendering import RenderError, html_to_text, render, render_part, validate

LEAD = {"first_name": "Ada", "company": "Acme", "custom": {"industry": "SaaS"}}


def _text(source: str, lead: dict | None = None, seed: str = "lead-1:step-1") -> str:
    return render_part(source, part="text", lead=LEAD if lead is None else lead, seed=seed)


def test_it_substitutes_lead_and_custom_fields() -> None:
    assert _text("Hi {{first_name}} at {{ company }} in {{custom.industry}}") == (
        "Hi Ada at Acme in SaaS"
    )
    # Top-level unknown keys are custom fields too.
    assert _text("{{custom.size}}", {"size": 40}) == "40"


def test_it_uses_fallbacks_for_missing_or_blank_values() -> None:
    assert _text("Hi {{first_name|there}}", {}) == "Hi there"
    assert _text("Hi {{first_name|there}}", {"first_name": "  "}) == "Hi there"
    assert _text("Hi {{last_name}}!", {}) == "Hi !"
    assert _text("{{custom.industry|your industry}}", {"custom": {}}) == "your industry"


def test_it_picks_spintax_deterministically_by_seed() -> None:
    source = "{Hi|Hello|Hey} {there|friend} {a|b|c|d|e|f|g|h}"
    first = _text(source, seed="lead-7:step-2")
    assert all(_text(source, seed="lead-7:step-2") == first for _ in range(5))
    outcomes = {_text(source, seed=f"lead-{n}:step-1") for n in range(60)}
    assert len(outcomes) > 10  # different leads get different choices
    for outcome in outcomes:
        greeting, who, letter = outcome.split(" ")
        assert (
            greeting in {"Hi", "Hello", "Hey"} and who in {"there", "friend"} and len(letter) == 1
        )


def test_it_nests_spintax_and_keeps_brace_groups_without_options() -> None:
    seen = {_text("{Hi|Hello {there|friend}}!", seed=str(n)) for n in range(80)}
    assert seen == {"Hi!", "Hello there!", "Hello friend!"}
    assert _text("a{color:red} \\{x\\|y\\}") == "a{color:red} {x|y}"


def test_it_escapes_values_in_html_only() -> None:
    lead = {"first_name": '<script>alert("x")</script>', "company": "A & B"}
    out = render(
        subject="For {{first_name}} & {{company}}",
        html_body="<p>{{first_name}} / {{company}}</p>",
        text_body="{{first_name}} / {{company}}",
        lead=lead,
        seed="s",
    )
    assert out.html == "<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; / A &amp; B</p>"
    assert out.text == '<script>alert("x")</script> / A & B'
    assert out.subject == 'For <script>alert("x")</script> & A & B'


def test_it_renders_lead_values_with_template_syntax_as_inert_text() -> None:
    lead = {"first_name": "{{custom.secret}} {Hi|Ho} {% debug %}", "custom": {"secret": "s3"}}
    assert _text("{{first_name}}", lead) == "{{custom.secret}} {Hi|Ho} {% debug %}"


def test_it_keeps_header_injection_out_of_the_subject() -> None:
    subject = render_part(
        "Hi {{first_name}}", part="subject", lead={"first_name": "Ada\r\nBcc: x@y.z"}, seed="s"
    )
    assert "\r" not in subject and "\n" not in subject


@pytest.mark.parametrize(
    "source",
    [
        "{{lead.__class__}}",
        "{{first_name.__class__}}",
        "{{custom.__class__.__mro__}}",
        "{{ __import__('os') }}",
        "{{first_name()}}",
        "{{request.user}}",
        "{% load static %}{{settings.SECRET_KEY}}",
    ],
)
def test_it_refuses_attribute_and_code_access(source: str) -> None:
    issues = validate("Hi", source, "")
    assert issues["html"], source
    with pytest.raises(RenderError):
        render_part(source, part="html", lead=LEAD, seed="s")


def test_it_names_unknown_variables_and_bad_syntax_with_positions() -> None:
    issues = validate(
        "{{frist_name}}",
        "<p>Hi</p>\n<p>{Hi|} {{ oops</p>\n}",
        "{a|b",
    )
    subject = issues["subject"][0]
    assert "Unknown variable `frist_name`" in subject.message and "first_name" in subject.message
    assert (subject.line, subject.column) == (1, 1)
    html = {(i.line, i.column): i.message for i in issues["html"]}
    assert "Empty spintax option" in html[(2, 8)]
    assert "`{{` is not closed" in html[(2, 10)]
    assert "closes nothing" in html[(3, 1)]
    assert "never closed" in issues["text"][0].message
    assert str(issues["text"][0]).startswith("Line 1, column 1:")
    assert validate("Hi {{first_name|there}}", "<p>{A|B}</p>", "") == {}


def test_it_checks_custom_fields_against_a_known_list_when_given() -> None:
    assert validate("{{custom.industry}}", "", "", custom_fields=["industry"]) == {}
    issues = validate("{{custom.size}}", "", "", custom_fields=["industry"])
    assert "Unknown custom field `size`" in issues["subject"][0].message


def test_it_limits_size_depth_and_options() -> None:
    big = "x" * (rendering.MAX_BODY_BYTES + 1)
    assert "Larger than 200 KB" in validate("Hi", big, "")["html"][0].message
    assert "Longer than" in validate("x" * 1000, "", "")["subject"][0].message
    deep = "{a|" * 6 + "b" + "}" * 6
    assert "nested more than 5" in validate("Hi", deep, "")["html"][0].message
    assert validate("Hi", "{a|" * 5 + "b" + "}" * 5, "") == {}
    many = "{" + "|".join("o" for _ in range(rendering.MAX_SPIN_OPTIONS + 1)) + "}"
    assert "spintax options" in validate("Hi", many, "")["html"][0].message
    # A body full of unclosed "{{" is refused quickly, with a bounded list of errors.
    issues = validate("Hi", "{{ " * 60_000, "")["html"]
    assert 0 < len(issues) <= rendering.MAX_ERRORS


def test_it_converts_html_to_text_keeping_links() -> None:
    text = html_to_text(
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<h1>Hi {{first_name}}</h1><p>Read <b>our</b> <a href='https://x.test/a'>guide</a> or "
        "<a href='https://y.test'>https://y.test</a>.<br>Thanks &amp; bye</p>"
        "<ul><li>one</li><li>two</li></ul><script>alert(1)</script></body></html>"
    )
    assert text == (
        "Hi {{first_name}}\n\nRead our guide (https://x.test/a) or https://y.test.\n"
        "Thanks & bye\n\n- one\n- two"
    )
