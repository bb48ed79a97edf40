"""The safe renderer for tenant-written templates (docs/templates.md).

Tenant text is never handed to Django's or Jinja's template engine: this module parses a tiny
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
"""

from __future__ import annotations

import html
import random
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import lru_cache
from html.parser import HTMLParser

from campaigns.models import LEAD_FIELDS

CUSTOM_PREFIX = "custom"

MAX_SUBJECT_CHARS = 998  # RFC 5322's line limit
MAX_BODY_BYTES = 200 * 1024  # each of the HTML and text parts, UTF-8
MAX_DEPTH = 5  # spintax nesting
MAX_SPIN_OPTIONS = 2_000  # options across all spin groups of one part
MAX_VARIABLES = 1_000  # variable uses in one part
MAX_FALLBACK_CHARS = 200
MAX_VALUE_CHARS = 2_000  # a lead value longer than this is cut
MAX_ERRORS = 50

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CUSTOM_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_ESCAPABLE = "{}|\\"


class RenderError(Exception):
    """The template cannot be rendered (it did not pass `validate`)."""


@dataclass(frozen=True)
class TemplateIssue:
    """One problem found by `validate`: which part, where, and what to do about it."""

    part: str  # "subject", "html" or "text"
    offset: int
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"Line {self.line}, column {self.column}: {self.message}"


# --- nodes ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Text:
    value: str


@dataclass(frozen=True)
class Var:
    name: str  # a LEAD_FIELDS name, or "custom.<key>"
    fallback: str | None
    offset: int


@dataclass(frozen=True)
class Spin:
    options: tuple[tuple[Node, ...], ...]


@dataclass(frozen=True)
class Group:
    """`{...}` without `|`: written out with its braces (CSS, literal text)."""

    children: tuple[Node, ...]


Node = Text | Var | Spin | Group


# --- parsing -------------------------------------------------------------------------------------
class _TooComplex(Exception):
    pass


@dataclass
class _Parser:
    source: str
    part: str
    custom_fields: Collection[str] | None
    issues: list[TemplateIssue] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)
    options: int = 0
    uses: int = 0
    _next_close: int = -2  # cached position of the next "}}" (-1: none left)

    def issue(self, offset: int, message: str) -> None:
        if len(self.issues) >= MAX_ERRORS:
            raise _TooComplex
        line = self.source.count("\n", 0, offset) + 1
        column = offset - (self.source.rfind("\n", 0, offset) + 1) + 1
        self.issues.append(TemplateIssue(self.part, offset, line, column, message))

    def parse(self) -> tuple[Node, ...]:
        try:
            nodes, end = self._sequence(0, depth=0)
        except _TooComplex:
            return ()
        return nodes

    def _find_close(self, start: int) -> int:
        # One search per "}}" instead of one per "{{": a body full of unclosed "{{" stays linear.
        if self._next_close == -1 or (self._next_close >= start):
            return self._next_close
        self._next_close = self.source.find("}}", start)
        return self._next_close

    def _sequence(self, i: int, *, depth: int) -> tuple[tuple[Node, ...], int]:
        """Nodes from i up to a top-level `|` or `}` of the enclosing group (or the end)."""
        src = self.source
        nodes: list[Node] = []
        buf: list[str] = []
        n = len(src)
        while i < n:
            ch = src[i]
            if ch == "\\" and i + 1 < n and src[i + 1] in _ESCAPABLE:
                buf.append(src[i + 1])
                i += 2
            elif src.startswith("{{", i):
                var, i = self._variable(i)
                if var is None:
                    buf.append("{{")
                else:
                    if buf:
                        nodes.append(Text("".join(buf)))
                        buf = []
                    nodes.append(var)
            elif ch == "{":
                if buf:
                    nodes.append(Text("".join(buf)))
                    buf = []
                group, i = self._group(i, depth=depth + 1)
                nodes.append(group)
            elif ch in "|}" and depth > 0:
                break
            elif ch == "}":
                self.issue(i, "This `}` closes nothing: remove it or write `\\}`.")
                buf.append(ch)
                i += 1
            else:
                # Copy a run of ordinary characters at once.
                j = i + 1
                while j < n and src[j] not in "{}|\\":
                    j += 1
                buf.append(src[i:j])
                i = j
        if buf:
            nodes.append(Text("".join(buf)))
        return tuple(nodes), i

    def _group(self, start: int, *, depth: int) -> tuple[Node, int]:
        if depth > MAX_DEPTH:
            self.issue(start, f"Spintax is nested more than {MAX_DEPTH} levels deep.")
            raise _TooComplex
        options: list[tuple[Node, ...]] = []
        option_starts: list[int] = []
        i = start + 1
        while True:
            option_starts.append(i)
            nodes, i = self._sequence(i, depth=depth)
            options.append(nodes)
            if i >= len(self.source):
                self.issue(start, "This `{` is never closed: add `}` or write `\\{`.")
                return Group(tuple(node for option in options for node in option)), i
            if self.source[i] == "}":
                i += 1
                break
            i += 1  # "|": next option
        if len(options) == 1:
            return Group(options[0]), i
        self.options += len(options)
        if self.options > MAX_SPIN_OPTIONS:
            self.issue(start, f"More than {MAX_SPIN_OPTIONS} spintax options in one part.")
            raise _TooComplex
        for begin, option in zip(option_starts, options, strict=True):
            if not option:
                self.issue(begin, "Empty spintax option: write text between each `|`.")
        return Spin(tuple(options)), i

    def _variable(self, start: int) -> tuple[Var | None, int]:
        close = self._find_close(start + 2)
        inner = self.source[start + 2 : close] if close != -1 else ""
        if close == -1 or len(inner) > 300 or any(c in inner for c in "{}\n"):
            self.issue(
                start,
                "`{{` is not closed: write a variable as `{{first_name}}` or "
                "`{{first_name|fallback}}`.",
            )
            return None, start + 2
        end = close + 2
        name, bar, fallback = inner.partition("|")
        name = name.strip()
        if bar and len(fallback) > MAX_FALLBACK_CHARS:
            self.issue(start, f"Fallback longer than {MAX_FALLBACK_CHARS} characters.")
        checked = self._check_name(name, start)
        if checked is None:
            return Var("", None, start), end  # reported; renders as nothing
        self.uses += 1
        if self.uses > MAX_VARIABLES:
            self.issue(start, f"More than {MAX_VARIABLES} variables in one part.")
            raise _TooComplex
        if checked not in self.variables:
            self.variables.append(checked)
        return Var(checked, fallback.strip() if bar else None, start), end

    def _check_name(self, name: str, at: int) -> str | None:
        if not name:
            self.issue(at, "Empty variable: write a field name, such as `{{first_name}}`.")
            return None
        head, dot, key = name.partition(".")
        if dot:
            if head != CUSTOM_PREFIX or not _CUSTOM_KEY.match(key):
                self.issue(
                    at,
                    f"`{name}` is not a variable: use a lead field such as `first_name` or a "
                    "custom field as `custom.industry` (no other dots, calls or attributes).",
                )
                return None
            if self.custom_fields is not None and key not in self.custom_fields:
                known = ", ".join(sorted(self.custom_fields)) or "none yet"
                self.issue(at, f"Unknown custom field `{key}` (custom fields: {known}).")
                return None
            return f"{CUSTOM_PREFIX}.{key}"
        if not _NAME.match(name):
            self.issue(
                at,
                f"`{name}` is not a variable name: use letters, digits and `_`, such as "
                "`first_name`.",
            )
            return None
        if name not in LEAD_FIELDS:
            hint = get_close_matches(name, LEAD_FIELDS, n=1)
            suggestion = f" Did you mean `{hint[0]}`?" if hint else ""
            self.issue(
                at,
                f"Unknown variable `{name}`.{suggestion} Lead fields: {', '.join(LEAD_FIELDS)}; "
                "custom fields as `custom.<name>`.",
            )
            return None
        return name


# --- public interface ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Parsed:
    """One part parsed: its nodes, the variables it uses, and what is wrong with it."""

    nodes: tuple[Node, ...]
    variables: tuple[str, ...]
    issues: tuple[TemplateIssue, ...]


def parse(source: str, *, part: str, custom_fields: Collection[str] | None = None) -> Parsed:
    """Parse one part; size limits are checked first (nothing over the limit is parsed)."""
    source = source or ""
    if part == "subject":
        if len(source) > MAX_SUBJECT_CHARS:
            issue = TemplateIssue(part, 0, 1, 1, f"Longer than {MAX_SUBJECT_CHARS} characters.")
            return Parsed((), (), (issue,))
        if "\n" in source or "\r" in source:
            at = min(i for i in (source.find("\n"), source.find("\r")) if i >= 0)
            issue = TemplateIssue(part, at, 1, at + 1, "A subject is one line: remove line breaks.")
            return Parsed((), (), (issue,))
    elif len(source.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        issue = TemplateIssue(part, 0, 1, 1, f"Larger than {MAX_BODY_BYTES // 1024} KB.")
        return Parsed((), (), (issue,))
    parser = _Parser(source, part, custom_fields)
    nodes = parser.parse()
    return Parsed(nodes, tuple(parser.variables), tuple(parser.issues))


def validate(
    subject: str, html_body: str, text_body: str, *, custom_fields: Collection[str] | None = None
) -> dict[str, list[TemplateIssue]]:
    """Every problem of each part, by part ("subject", "html", "text"); empty when all is well.

    `custom_fields`: the custom field names that exist, or None to accept any `custom.<name>`.
    """
    found: dict[str, list[TemplateIssue]] = {}
    for part, source in (("subject", subject), ("html", html_body), ("text", text_body)):
        issues = parse(source, part=part, custom_fields=custom_fields).issues
        if issues:
            found[part] = list(issues)
    return found


def variables_of(*sources: str) -> list[str]:
    """The variables used across parts, in order of first use (invalid ones left out)."""
    seen: list[str] = []
    for source in sources:
        for name in parse(source, part="text").variables:
            if name not in seen:
                seen.append(name)
    return seen


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


# --- parse once, render many ---------------------------------------------------------------------
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


# --- HTML to text --------------------------------------------------------------------------------
_BLOCKS = frozenset(
    "address article aside blockquote div dl dt dd fieldset figure footer form h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table tr ul".split()
)
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.links: list[tuple[str | None, int]] = []  # (href, position in out)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag == "br":
            self.out.append("\n")
        elif tag in _BLOCKS:
            self.out.append("\n\n" if tag in ("p", "h1", "h2", "h3", "table", "ul", "ol") else "\n")
            if tag == "li":
                self.out.append("- ")
        elif tag == "a":
            self.links.append((dict(attrs).get("href"), len(self.out)))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and not self.skip:
                self.out.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS and tag != "li":
            self.out.append("\n\n" if tag in ("p", "h1", "h2", "h3", "table", "ul", "ol") else "\n")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "a" and self.links:
            href, at = self.links.pop()
            label = " ".join("".join(self.out[at:]).split())
            if href and not href.lower().startswith(("#", "javascript:")):
                href = href.strip()
                target = href[7:] if href.lower().startswith("mailto:") else href
                self.out.append(
                    f" ({href})" if label and label != target else ("" if label else href)
                )

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(source: str) -> str:
    """A plain-text part from an HTML part: block elements become line breaks, list items
    "- item", links "text (url)". Template syntax passes through untouched."""
    parser = _TextExtractor()
    parser.feed(source or "")
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.out).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
