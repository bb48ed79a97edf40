"""The safe renderer for tenant-written templates (docs/templates.md).

Tenant text is never handed to Django's or Jinja's template engine: this package parses a tiny
language of its own into plain nodes and renders them with dictionary lookups only, so a template
cannot reach code, attributes or objects, and a lead's values are inserted as inert text (never
parsed again).

The language:

- `{{first_name}}`: a lead field (`LEAD_FIELDS`), or a custom field as `{{custom.industry}}`.
  `{{first_name|there}}` uses "there" when the lead has no (or a blank) value. Names are plain
  identifiers: `{{lead.__class__}}`, `{{x()}}` or `{{a.b.c}}` are refused on save.
- `{Hi|Hello|Hey}`: spintax, one option chosen per message, nestable (`{Hi|Hello {there|friend}}`).
  The choice comes from a RNG seeded with a stable key (lead and step), so rendering the same
  message twice gives the same text. A `{...}` without `|` is kept as written (CSS in a `<style>`
  block keeps working). `{{` always opens a variable: start a nested group after a space.
- `\\{`, `\\}`, `\\|` and `\\\\` write the character itself.


Values are HTML-escaped in the HTML part only; in the subject, CR and LF become spaces. Limits
(`MAX_*`) bound the size, the nesting and the number of spin options, so parsing and rendering stay
linear and small.

Modules: `parser` (a part parsed into nodes, every problem located; `parse`, `validate`,
`variables_of`), `nodes` (the parsed form and the errors), `renderer` (nodes rendered for a lead;
`render`, `compile_template`), `limits` (the `MAX_*` bounds), `plain_text` (`html_to_text`).
"""

from __future__ import annotations

from campaigns.models import LEAD_FIELDS
from campaigns.rendering.limits import (
    MAX_BODY_BYTES,
    MAX_DEPTH,
    MAX_ERRORS,
    MAX_FALLBACK_CHARS,
    MAX_SPIN_OPTIONS,
    MAX_SUBJECT_CHARS,
    MAX_VALUE_CHARS,
    MAX_VARIABLES,
)
from campaigns.rendering.nodes import (
    CUSTOM_PREFIX,
    Group,
    Node,
    Parsed,
    RenderError,
    Spin,
    TemplateIssue,
    Text,
    Var,
)
from campaigns.rendering.parser import parse, validate, variables_of
from campaigns.rendering.plain_text import html_to_text
from campaigns.rendering.renderer import (
    COMPILED_CACHE_SIZE,
    CompiledTemplate,
    Rendered,
    compile_template,
    lead_values,
    render,
    render_part,
)

__all__ = [
    "COMPILED_CACHE_SIZE",
    "CUSTOM_PREFIX",
    "LEAD_FIELDS",
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "MAX_ERRORS",
    "MAX_FALLBACK_CHARS",
    "MAX_SPIN_OPTIONS",
    "MAX_SUBJECT_CHARS",
    "MAX_VALUE_CHARS",
    "MAX_VARIABLES",
    "CompiledTemplate",
    "Group",
    "Node",
    "Parsed",
    "RenderError",
    "Rendered",
    "Spin",
    "TemplateIssue",
    "Text",
    "Var",
    "compile_template",
    "html_to_text",
    "lead_values",
    "parse",
    "render",
    "render_part",
    "validate",
    "variables_of",
]
