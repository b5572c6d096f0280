from django.urls import path

from apps.insight import views

app_name = "insight"
urlpatterns = [
    path("", views.index, name="index"),
    path("forecast/", views.forecast_page, name="forecast"),
    path("forecast/today", views.forecast_today, name="forecast-today"),
    path("forecast/refresh", views.forecast_refresh, name="forecast-refresh"),
    path("forecast/accept", views.allowance_accept, name="allowance-accept"),
    path("<slug:slug>/", views.report, name="report"),
]
