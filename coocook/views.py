"""coocook HTTP views: thin, over services and selectors."""
