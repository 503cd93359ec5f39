"""Cache invalidation for coocook: writes to chefs and reviews bump their namespaces after commit.

Save and delete bump through signals (softfactory.cache.watch_model); `update()` and bulk writes
through the models' InvalidatingQuerySet. Bookings show in no cached response, so they bump
nothing: a booking never invalidates the chef list.
"""

from __future__ import annotations

from coocook.models import Chef, Review
from coocook.selectors import CHEFS, REVIEWS
from softfactory import cache

# The owner and the running rating total appear in no cached response.
cache.watch_model(Chef, namespaces=(CHEFS,), ignored_fields=("owner", "rating_total"))
cache.watch_model(Review, namespaces=(REVIEWS,))
