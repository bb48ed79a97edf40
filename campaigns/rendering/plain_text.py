"""A plain-text part from an HTML part."""

from __future__ import annotations

import re
from html.parser import HTMLParser

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
