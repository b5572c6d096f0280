"""Card payments' URLs: the websites' payment step and the providers' webhooks (routed in project/urls.py)."""

from django.urls import path

from apps.payments import overstay_views, views

urlpatterns = [
    path("payments/stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
    # Before the websites' own /booked/<ref>/ (project/urls.py): until paid, a booking's page is its payment step.
    path("booked/<str:reference>/", views.pay, name="site-pay"),
    # Before the websites' own amend: a change that costs more is paid first.
    path("manage/<str:reference>/amend/", views.amend, name="site-amend-paid"),
    path("booked/<str:reference>/pay/confirm", views.pay_confirm, name="site-pay-confirm"),
    path("booked/<str:reference>/pay/demo", views.pay_demo, name="site-pay-demo"),
    path("pay/<str:token>", overstay_views.pay_overstay, name="pay-overstay"),
    path("pay/<str:token>/confirm", overstay_views.pay_overstay_confirm, name="pay-overstay-confirm"),
    path("pay/<str:token>/demo", overstay_views.pay_overstay_demo, name="pay-overstay-demo"),
    path("lanes/<int:lane_id>/display", overstay_views.lane_display, name="lane-display"),
]
