"""coocook routes (mounted under /api/coocook/ by softfactory/urls.py)."""

from rest_framework.routers import SimpleRouter

from coocook import views

router = SimpleRouter(trailing_slash=False)
router.register("chefs", views.ChefViewSet, basename="chef")
router.register("bookings", views.BookingViewSet, basename="booking")
router.register("reviews", views.ReviewViewSet, basename="review")

urlpatterns = router.urls
