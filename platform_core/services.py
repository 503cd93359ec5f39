"""platform_core: services."""
