"""The one place that wires every app's routes together."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from softfactory import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # The busiest routes first: URLs are resolved by trying each pattern in turn.
    path("api/coocook/", include("coocook.urls")),
    path("api/review/", include("review.urls")),
    path("api/sns/", include("sns.urls")),
    path("api/", include("platform_core.urls")),
]

handler404 = "softfactory.api.not_found"
handler500 = "softfactory.api.server_error"
