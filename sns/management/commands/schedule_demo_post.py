"""`manage.py schedule_demo_post`: schedule one post a minute ahead for the demo staff user.

`make run` calls it, so a fresh local run shows the whole path: beat's dispatcher claims the
post at its time and a worker publishes it through the log publisher.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from platform_core.models import User
from sns import services


class Command(BaseCommand):
    help = "Schedule a demo SNS post a minute from now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", default="staff@softfactory.local")
        parser.add_argument("--seconds", type=int, default=60)

    def handle(self, *args: Any, email: str, seconds: int, **options: Any) -> None:
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"no user {email}; run manage.py seed first")
        post = services.post_schedule(
            user=user,
            platform="twitter",
            content="Hello from SoftFactory's demo run.",
            scheduled_at=timezone.now() + timedelta(seconds=seconds),
        )
        self.stdout.write(f"demo post {post.pk} scheduled for {post.scheduled_at:%H:%M:%S} UTC (log publisher)")
