from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import views

urlpatterns = [
    path("calendar/", views.calendar_member, name="calendar"),
    path("calendar/board/", views.calendar_board, name="calendar-board"),
    # A sign-in page for therapists too (the admin's login admits staff only).
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="scheduler/login.html",
            redirect_authenticated_user=True,
            next_page=reverse_lazy("calendar"),
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
]
