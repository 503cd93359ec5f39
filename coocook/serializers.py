"""coocook: serializers."""
