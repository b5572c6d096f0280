from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import DatabaseError


@register(Tags.security, deploy=True)
def demo_user_absent(app_configs, **kwargs):
    """docs/operations.md 2: `check --deploy` fails while the demo staff user exists."""
    from django.contrib.auth import get_user_model

    try:
        exists = get_user_model().objects.filter(username=settings.DEMO_STAFF_USERNAME).exists()
    except DatabaseError:
        return []  # no database yet (fresh deploy before migrate): nothing to find
    if exists:
        return [
            Error(
                f"The demo staff user '{settings.DEMO_STAFF_USERNAME}' exists (password 'demo').",
                hint="Delete it before going live: python manage.py shell -c "
                "\"from django.contrib.auth.models import User; User.objects.filter(username='demo').delete()\"",
                id="parkgate.E001",
            )
        ]
    return []
