"""platform_core: signals."""
