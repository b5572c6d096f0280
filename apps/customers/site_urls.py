"""The customer's pages the customers app adds to the brand sites (beside apps.bookings.urls)."""

from django.urls import path

from apps.customers import site_views

urlpatterns = [
    path("manage/<str:reference>/resend/", site_views.resend_confirmation, name="site-resend"),
    path("manage/<str:reference>/receipt.pdf", site_views.receipt_pdf, name="site-receipt"),
]
