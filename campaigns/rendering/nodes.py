"""The parsed form of a template: its nodes, the problems found, and the errors raised."""

from __future__ import annotations

from dataclasses import dataclass

# A custom field is used as `{{custom.<key>}}`.
CUSTOM_PREFIX = "custom"


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


@dataclass(frozen=True)
class Parsed:
    """One part parsed: its nodes, the variables it uses, and what is wrong with it."""

    nodes: tuple[Node, ...]
    variables: tuple[str, ...]
    issues: tuple[TemplateIssue, ...]
