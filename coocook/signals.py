"""coocook: signals."""
