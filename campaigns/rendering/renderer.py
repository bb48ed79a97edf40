"""Rendering parsed parts for a lead: values looked up in a flat dictionary, spintax chosen by a
seeded RNG, and templates compiled once for many leads."""

from __future__ import annotations

import html
import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from campaigns.models import LEAD_FIELDS
from campaigns.rendering.limits import MAX_VALUE_CHARS
from campaigns.rendering.nodes import CUSTOM_PREFIX, Node, Parsed, RenderError, Spin, Text, Var
from campaigns.rendering.parser import parse


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


def render_part(
    source: str, *, part: str, lead: Mapping[str, object], seed: str, escape: bool = False
) -> str:
    """One part for one lead. Raises RenderError if the part has any problem."""
    return _render_parsed(
        _checked(parse(source, part=part), part), part, lead_values(lead), seed, escape
    )


def _checked(parsed: Parsed, part: str) -> Parsed:
    if parsed.issues:
        raise RenderError(f"{part}: {parsed.issues[0]}")
    return parsed


def _render_parsed(
    parsed: Parsed, part: str, values: Mapping[str, str], seed: str, escape: bool
) -> str:
    # One RNG per part, so editing the subject does not change the body's choices.
    rng = random.Random(f"{seed}\x00{part}")
    out: list[str] = []
    _render(parsed.nodes, values, rng, escape, out)
    result = "".join(out)
    if part == "subject":
        result = " ".join(result.split())
    return result


def render(
    *, subject: str, html_body: str, text_body: str, lead: Mapping[str, object], seed: str
) -> Rendered:
    """All three parts for one lead; the same `seed` (lead and step) gives the same message."""
    return _compile(subject, html_body, text_body).render(lead=lead, seed=seed)


@dataclass(frozen=True)
class CompiledTemplate:
    """The three parts parsed once (`compile_template`); `render` then only walks the nodes. A
    part with a problem keeps it and raises RenderError at render time, like `render`."""

    subject: Parsed
    html: Parsed
    text: Parsed

    def render(self, *, lead: Mapping[str, object], seed: str) -> Rendered:
        """The same result as `render(...)` with this template's sources."""
        subject, html_part, text = (
            _checked(self.subject, "subject"),
            _checked(self.html, "html"),
            _checked(self.text, "text"),
        )
        values = lead_values(lead)
        return Rendered(
            subject=_render_parsed(subject, "subject", values, seed, False),
            html=_render_parsed(html_part, "html", values, seed, True),
            text=_render_parsed(text, "text", values, seed, False),
        )


def _compile(subject: str, html_body: str, text_body: str) -> CompiledTemplate:
    return CompiledTemplate(
        subject=parse(subject, part="subject"),
        html=parse(html_body, part="html"),
        text=parse(text_body, part="text"),
    )


# Keyed by the sources themselves, so an edited template is a new entry, never a stale one.
# Bounded: a worker keeps at most this many distinct templates parsed (a part is at most
# MAX_BODY_BYTES, so the worst case stays in the tens of MB).
COMPILED_CACHE_SIZE = 64


@lru_cache(maxsize=COMPILED_CACHE_SIZE)
def compile_template(subject: str, html_body: str, text_body: str) -> CompiledTemplate:
    """A template's three parts parsed once, cached by content, for rendering to many leads
    (the send pipeline compiles each variant once per batch, and batches share the cache)."""
    return _compile(subject, html_body, text_body)


def lead_values(lead: Mapping[str, object]) -> dict[str, str]:
    """Flat `{variable name: text}` from lead data: known fields, and custom fields from the
    `custom` mapping or any other top-level key. Only str, int, float and bool values count;
    anything else (objects, lists) is treated as missing."""
    values: dict[str, str] = {}
    custom = lead.get("custom")
    items: list[tuple[str, object]] = []
    if isinstance(custom, Mapping):
        items.extend((f"{CUSTOM_PREFIX}.{k}", v) for k, v in custom.items() if isinstance(k, str))
    for key, value in lead.items():
        if not isinstance(key, str) or key == CUSTOM_PREFIX:
            continue
        items.append((key if key in LEAD_FIELDS else f"{CUSTOM_PREFIX}.{key}", value))
    for name, value in items:
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, str | int | float):
            text = str(value)
        else:
            continue
        values.setdefault(name, text[:MAX_VALUE_CHARS])
    return values


def _render(
    nodes: tuple[Node, ...],
    values: Mapping[str, str],
    rng: random.Random,
    escape: bool,
    out: list[str],
) -> None:
    for node in nodes:
        if isinstance(node, Text):
            out.append(node.value)
        elif isinstance(node, Var):
            value = values.get(node.name, "")
            if not value.strip():
                out.append(node.fallback or "")
            else:
                out.append(html.escape(value, quote=True) if escape else value)
        elif isinstance(node, Spin):
            _render(node.options[rng.randrange(len(node.options))], values, rng, escape, out)
        else:
            out.append("{")
            _render(node.children, values, rng, escape, out)
            out.append("}")
