"""Serializer fields for JSON values, with depth and size limits (penguinmails.api.jsonlimits).

Use these for every JSON-valued input instead of DRF's JSONField/DictField: a value nested too
deep, too large once encoded, or holding NUL or a lone surrogate is refused with a 400 naming the
field, instead of failing in PostgreSQL. DRF's CharField already refuses NUL and lone surrogates.
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from penguinmails.api import jsonlimits


class JSONLimitsValidator:
    """A field validator: at most `max_depth` levels and `max_bytes` bytes once encoded."""

    def __init__(
        self,
        *,
        max_depth: int = jsonlimits.MAX_FIELD_DEPTH,
        max_bytes: int = jsonlimits.MAX_FIELD_BYTES,
    ) -> None:
        self.max_depth = max_depth
        self.max_bytes = max_bytes

    def __call__(self, value: Any) -> None:
        problem = jsonlimits.find_problem(value, max_depth=self.max_depth)
        if problem is not None:
            where, message = problem
            raise serializers.ValidationError(
                message if where == "non_field_errors" else f"{where}: {message}"
            )
        size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
        if size > self.max_bytes:
            raise serializers.ValidationError(f"At most {self.max_bytes:,} bytes of JSON.")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, JSONLimitsValidator)
            and other.max_depth == self.max_depth
            and other.max_bytes == self.max_bytes
        )

    def __hash__(self) -> int:
        return hash((self.max_depth, self.max_bytes))


def _limits(kwargs: dict[str, Any]) -> JSONLimitsValidator:
    """Pops `max_depth` and `max_bytes` and adds their validator to the field's validators."""
    limits = JSONLimitsValidator(
        max_depth=kwargs.pop("max_depth", jsonlimits.MAX_FIELD_DEPTH),
        max_bytes=kwargs.pop("max_bytes", jsonlimits.MAX_FIELD_BYTES),
    )
    kwargs["validators"] = [*kwargs.get("validators", ()), limits]
    return limits


class BoundedJSONField(serializers.JSONField):
    """Any JSON value, limited (`max_depth`, `max_bytes` keyword arguments)."""

    def __init__(self, **kwargs: Any) -> None:
        _limits(kwargs)
        super().__init__(**kwargs)


class BoundedDictField(serializers.DictField):
    """A JSON object, limited (`max_depth`, `max_bytes` keyword arguments)."""

    def __init__(self, **kwargs: Any) -> None:
        self.limits = _limits(kwargs)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        # Checked before DictField recurses into children, which would recurse without bound.
        if isinstance(data, dict):
            self.limits(data)
        return super().to_internal_value(data)
