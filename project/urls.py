from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.bookings import views as site_views
from apps.bookings.api import api as agents_api
from apps.bookings.api import fallback as agents_api_fallback
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
    path("dashboard/", include("apps.staff.urls")),
    path("accounting/", include("apps.accounting.urls")),
    path("api/device/v1/", device_api.urls),
    path("api/v1/", agents_api.urls),
    path("", site_views.home, name="home"),
    path("", include("apps.bookings.urls")),
]
