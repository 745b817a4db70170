from __future__ import annotations

from django.urls import path

from . import views

app_name = "google"
urlpatterns = [
    path("", views.status, name="status"),
    path("connect/", views.connect, name="connect"),
    path("callback/", views.callback, name="callback"),
    path("calendar/", views.calendar, name="calendar"),
    path("disconnect/", views.disconnect, name="disconnect"),
]
