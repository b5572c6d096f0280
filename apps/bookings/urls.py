"""The customer websites' pages (the home page `/` is routed in project/urls.py)."""

from django.urls import path

from apps.bookings import views
from apps.carparks.models import Brand

urlpatterns = [
    path("quote/", views.quote, name="site-quote"),
    path("book/", views.book, name="site-book"),
    path("booked/<str:reference>/", views.booked, name="site-booked"),
    path("manage/", views.manage, name="site-manage"),
    path("manage/<str:reference>/", views.booking_detail, name="site-booking"),
    path("manage/<str:reference>/amend/", views.booking_amend, name="site-amend"),
    path("manage/<str:reference>/cancel/", views.booking_cancel, name="site-cancel"),
    path("carparks/<str:code>/", views.carpark, name="site-carpark"),
    *(path(f"{slug}/", views.policy, {"slug": slug}, name=f"site-{slug}") for slug, _, _ in Brand.POLICIES),
]
