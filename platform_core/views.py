"""platform_core HTTP views: thin, over services and selectors."""
