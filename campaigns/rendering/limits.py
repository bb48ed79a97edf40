"""The bounds on a template and a lead's values, so that parsing and rendering stay linear and
small."""

from __future__ import annotations

MAX_SUBJECT_CHARS = 998  # RFC 5322's line limit
MAX_BODY_BYTES = 200 * 1024  # each of the HTML and text parts, UTF-8
MAX_DEPTH = 5  # spintax nesting
MAX_SPIN_OPTIONS = 2_000  # options across all spin groups of one part
MAX_VARIABLES = 1_000  # variable uses in one part
MAX_FALLBACK_CHARS = 200
MAX_VALUE_CHARS = 2_000  # a lead value longer than this is cut
MAX_ERRORS = 50
