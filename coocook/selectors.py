"""coocook: selectors."""
