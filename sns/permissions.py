"""sns: permissions.

Nothing beyond the default `IsAuthenticated`: posts are visible to their owner only, and
`sns.selectors` scopes every lookup to the caller, so anyone else (staff included) gets 404,
never 403 (API.md).
"""
