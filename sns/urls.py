"""sns routes (mounted by softfactory/urls.py under /api/sns/)."""

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from sns import views

app_name = "sns"

router = SimpleRouter(trailing_slash=False)
router.register("posts", views.PostViewSet, basename="post")

urlpatterns: list[URLPattern | URLResolver] = [
    path("schedule", views.PostScheduleView.as_view(), name="post-schedule"),
    *router.urls,
]
