"""coocook: tasks."""
