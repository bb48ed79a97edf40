from __future__ import annotations

from tests.sending.conftest import sandbox  # noqa: F401 - the fixture
