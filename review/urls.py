"""review routes (mounted by softfactory/urls.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
