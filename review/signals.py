"""Cache invalidation for review: every write to a campaign bumps its namespace after commit.

Save and delete bump through signals (softfactory.cache.watch_model); `update()` (seats taken
and given back, deadline closing) and bulk writes through Campaign's InvalidatingQuerySet.
Applications show in no cached response; their effect on a campaign (`applicant_count`) is a
Campaign update.
"""

from __future__ import annotations

from review.models import Campaign
from review.selectors import CAMPAIGNS
from softfactory import cache

cache.watch_model(Campaign, namespaces=(CAMPAIGNS,))
