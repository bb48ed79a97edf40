"""The bounce corpus (shared/data/bounces, beside the project root), skipped only when absent."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

CORPUS = Path(settings.BASE_DIR).parent / "shared" / "data" / "bounces" / "maildir"


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS / "bsd").is_dir():
        pytest.skip(f"bounce corpus not found at {CORPUS} (a copy of shared/ beside the project)")
    return CORPUS
