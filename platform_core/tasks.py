"""platform_core: tasks."""
