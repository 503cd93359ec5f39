"""review routes (mounted under /api/review/ by softfactory/urls.py)."""

from rest_framework.routers import SimpleRouter

from review import views

router = SimpleRouter(trailing_slash=False)
router.register("campaigns", views.CampaignViewSet, basename="campaign")
router.register("applications", views.ApplicationViewSet, basename="application")

urlpatterns = router.urls
