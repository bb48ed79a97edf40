"""Parsing a part (variables, spintax, escapes) into nodes, with every problem located."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from difflib import get_close_matches

from campaigns.models import LEAD_FIELDS
from campaigns.rendering.limits import (
    MAX_BODY_BYTES,
    MAX_DEPTH,
    MAX_ERRORS,
    MAX_FALLBACK_CHARS,
    MAX_SPIN_OPTIONS,
    MAX_SUBJECT_CHARS,
    MAX_VARIABLES,
)
from campaigns.rendering.nodes import (
    CUSTOM_PREFIX,
    Group,
    Node,
    Parsed,
    Spin,
    TemplateIssue,
    Text,
    Var,
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CUSTOM_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_ESCAPABLE = "{}|\\"


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
