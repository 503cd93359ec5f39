"""coocook routes (mounted under /api/coocook/ by softfactory/urls.py)."""

from rest_framework.routers import SimpleRouter

from coocook import views
from softfactory.cache import serving_hits_early

router = SimpleRouter(trailing_slash=False)
router.register("chefs", views.ChefViewSet, basename="chef")
router.register("bookings", views.BookingViewSet, basename="booking")
router.register("reviews", views.ReviewViewSet, basename="review")

# The public reads served from the response cache: known hits are answered before DRF runs.
urlpatterns = serving_hits_early(router.urls, {"chef-list", "chef-detail", "chef-reviews"})
