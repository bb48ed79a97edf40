"""Static files storage for production: whitenoise's compressed, hashed files, degrading
instead of failing when `collectstatic` has not run.

Whitenoise's manifest storage raises on every `{% static %}` whose file is not in the manifest
(`staticfiles.json`, written by `collectstatic`). Without that step, every HTML page, the 404
and 500 pages included, became a 500. With no manifest at all, this storage hands out unhashed
names, which whitenoise then serves from the apps' static folders (settings turns
WHITENOISE_USE_FINDERS on in that case), and says so once in the log. With a manifest, a name
missing from it still raises: that is a real bug, found at deploy time.
"""

from __future__ import annotations

import logging
from typing import Any

from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    _warned = False

    def stored_name(self, name: str) -> str:
        if not self.hashed_files:  # no manifest: collectstatic has not run
            if not StaticFilesStorage._warned:
                StaticFilesStorage._warned = True
                logger.warning(
                    "No static files manifest in %s: serving unhashed static files from the "
                    "apps' folders. Run `python manage.py collectstatic --noinput` at deploy.",
                    self.location,
                )
            return name
        result: Any = super().stored_name(name)
        return str(result)
