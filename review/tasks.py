"""review: tasks."""
