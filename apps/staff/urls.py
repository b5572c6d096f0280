from django.urls import path

from apps.staff import payments_views, price_rules, prices, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("snapshot", views.snapshot, name="dashboard-snapshot"),
    path("search", views.search, name="dashboard-search"),
    path("alerts/<int:alert_id>/acknowledge", views.alert_acknowledge, name="dashboard-alert-ack"),
    path("lanes/<int:lane_id>/open", views.barrier_open, name="dashboard-barrier-open"),
    path("devices/<uuid:device_id>/cameras", views.camera_map, name="dashboard-camera-map"),
    path("lockouts", views.lockouts, name="dashboard-lockouts"),
    path("bookings/<str:reference>/payments", payments_views.booking_payments, name="dashboard-booking-payments"),
    path("payments/failed", payments_views.failed_payments, name="dashboard-failed-payments"),
    path("payments/payouts", payments_views.payouts, name="dashboard-payouts"),
    path("refunds/<int:refund_id>/retry", payments_views.refund_retry, name="dashboard-refund-retry"),
    path("prices/<str:code>/", prices.prices, name="dashboard-prices"),
    path("prices/<str:code>/calendar.csv", prices.prices_csv, name="dashboard-prices-csv"),
    path("prices/<str:code>/rules/", price_rules.price_rules, name="dashboard-price-rules"),
]
