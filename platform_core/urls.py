"""platform_core routes (mounted under /api/ by softfactory/urls.py)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from platform_core import views

router = SimpleRouter(trailing_slash=False)
router.register("payment/payments", views.PaymentViewSet, basename="payment")

urlpatterns = [
    path("auth/register", views.RegisterView.as_view(), name="auth-register"),
    path("auth/login", views.LoginView.as_view(), name="auth-login"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/me", views.MeView.as_view(), name="auth-me"),
    *router.urls,
]
