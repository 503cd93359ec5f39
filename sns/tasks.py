"""sns: tasks."""
