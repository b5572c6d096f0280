"""The ASGI application: HTTP through Django, WebSockets through Channels' router.

`manage.py serve` imports `application` from here; any ASGI server can too.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from project.routing import build_application  # noqa: E402  (imports models: needs apps loaded)

application = build_application(django_asgi_app)

from django.conf import settings  # noqa: E402

if settings.TRUSTED_PROXIES:
    # The client address (scope["client"], so REMOTE_ADDR) from X-Forwarded-For, only when the peer is a trusted
    # proxy, taking the rightmost address that is not one; X-Forwarded-Proto too. Daphne's own option trusts any peer.
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    application = ProxyHeadersMiddleware(application, trusted_hosts=settings.TRUSTED_PROXIES)
