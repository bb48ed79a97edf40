"""Warm-up models (tenant schema); the pool's public index is penguinmails.indexes."""

from __future__ import annotations
