"""platform_core: permissions."""
