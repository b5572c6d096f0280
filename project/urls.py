from anymail import urls as anymail_urls
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.bookings import views as site_views
from apps.bookings.api import api as agents_api
from apps.bookings.api import fallback as agents_api_fallback
from apps.ground.api import api as ops_api
from apps.staff.twofactor_views import sessions as staff_sessions
from apps.staff.twofactor_views import two_factor
from apps.webhooks.api import router as webhooks_router
from device_gateway.api import api as device_api
from project import views

agents_api.add_router("/webhooks", webhooks_router)
agents_api.add_router("", agents_api_fallback)  # last: any other path under /api/v1/ gets the API's JSON 404

urlpatterns = [
    path("healthz", views.healthz),
    path("readyz", views.readyz),
    path("metrics", views.metrics_view),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/two-factor/", two_factor, name="two-factor"),
    path("accounts/sessions/", staff_sessions, name="staff-sessions"),
    path("accounts/password_reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password_reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(), name="password_reset_confirm"
    ),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("dashboard/customers/", include("apps.customers.urls")),
    path("dashboard/", include("apps.staff.urls")),
    path("accounting/", include("apps.accounting.urls")),
    path("reports/", include("apps.insight.urls")),
    path("api/device/v1/", device_api.urls),
    path("api/v1/", agents_api.urls),
    path("", include("apps.payments.urls")),
    path("ops/", include("apps.ground.urls")),
    path("api/ops/v1/", ops_api.urls),
    path("", site_views.home, name="home"),
    path("", include("apps.customers.site_urls")),
    path("", include("apps.bookings.urls")),
]

# The mail provider's tracking webhook (bounces, complaints: apps.customers.receivers), only with its basic-auth
# secret: without one anymail would take anyone's events. Its other webhooks (inbound mail) are not mounted.
if settings.EMAIL_TRACKING_PROVIDER and settings.ANYMAIL.get("WEBHOOK_SECRET"):
    urlpatterns[:0] = [
        path(f"anymail/{p.pattern}", p.callback, name=f"anymail-{p.name}")
        for p in anymail_urls.urlpatterns
        if p.name == f"{settings.EMAIL_TRACKING_PROVIDER}_tracking_webhook"
    ]
