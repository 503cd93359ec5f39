"""coocook models."""
