from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "penguinmails.settings")
django_application = get_wsgi_application()

# Tracking (/t/...) is served on tenants' tracking CNAMEs that django-tenants does not route, and
# is the hottest path: a small WSGI app in front of Django takes it (docs/tracking.md).
from campaigns.tracking.app import with_tracking  # noqa: E402

application = with_tracking(django_application)
