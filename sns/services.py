"""sns: services."""
