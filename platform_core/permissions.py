"""Throttles of platform_core (rates from the environment)."""

from rest_framework.throttling import SimpleRateThrottle


class RegistrationThrottle(SimpleRateThrottle):
    """Registrations per client address (API.md: at least 60 a minute before 429)."""

    scope = "register"

    def get_cache_key(self, request, view):  # type: ignore[no-untyped-def]
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
