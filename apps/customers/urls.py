from django.urls import path

from apps.customers import views

urlpatterns = [
    path("", views.find, name="customers-find"),
    path("export", views.export, name="customers-export"),
    path("erase", views.erase, name="customers-erase"),
]
