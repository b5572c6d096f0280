"""Accounting pages, mounted by project/urls.py under /accounting/ (namespace "accounting")."""

from django.urls import path

from apps.accounting import views
from apps.accounting.api import api

app_name = "accounting"

urlpatterns = [
    path("", views.home, name="home"),
    path("trial-balance.csv", views.trial_balance_csv, name="trial-balance-csv"),
    path("ledger/<str:code>/", views.account_ledger, name="ledger"),
    path("ledger/<str:code>.csv", views.account_ledger_csv, name="ledger-csv"),
    path("agents/<int:agent_id>/statement", views.agent_statement, name="agent-statement"),
    path("agents/<int:agent_id>/statement.csv", views.agent_statement_csv, name="agent-statement-csv"),
    path("invoices/", views.invoices, name="invoices"),
    path("invoices/<int:invoice_id>/", views.invoice_print, name="invoice"),
    path("invoices/<int:invoice_id>.csv", views.invoice_csv, name="invoice-csv"),
    path("invoices/<int:invoice_id>/paid", views.invoice_paid, name="invoice-paid"),
    path("periods", views.period, name="period"),
    path("vat/", views.vat_return, name="vat"),
    path("bookings/<str:reference>/", views.booking_account, name="booking"),
    path("api/", api.urls),
]
