"""platform_core: selectors."""
