"""coocook: services."""
