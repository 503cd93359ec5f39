"""review: services."""
