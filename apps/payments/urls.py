"""Card payments' URLs: the websites' payment step and the providers' webhooks (routed in project/urls.py)."""

from django.urls import path

from apps.payments import views

urlpatterns = [
    path("payments/stripe/webhook/", views.stripe_webhook, name="stripe-webhook"),
    # Before the websites' own /booked/<ref>/ (project/urls.py): until paid, a booking's page is its payment step.
    path("booked/<str:reference>/", views.pay, name="site-pay"),
    # Before the websites' own amend: a change that costs more is paid first.
    path("manage/<str:reference>/amend/", views.amend, name="site-amend-paid"),
    path("booked/<str:reference>/pay/confirm", views.pay_confirm, name="site-pay-confirm"),
    path("booked/<str:reference>/pay/demo", views.pay_demo, name="site-pay-demo"),
]
