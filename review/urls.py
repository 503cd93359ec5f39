"""review routes (mounted under /api/review/ by softfactory/urls.py)."""

from rest_framework.routers import SimpleRouter

from review import views
from softfactory.cache import serving_hits_early

router = SimpleRouter(trailing_slash=False)
router.register("campaigns", views.CampaignViewSet, basename="campaign")
router.register("applications", views.ApplicationViewSet, basename="application")

# The public reads served from the response cache: known hits are answered before DRF runs.
urlpatterns = serving_hits_early(router.urls, {"campaign-list", "campaign-detail"})
