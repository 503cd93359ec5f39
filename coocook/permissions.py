"""coocook: permissions."""
