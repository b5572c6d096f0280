"""The ASGI application: HTTP through Django, WebSockets through Channels' router.

`manage.py serve` imports `application` from here; any ASGI server can too.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from project.routing import build_application  # noqa: E402  (imports models: needs apps loaded)

application = build_application(django_asgi_app)
