"""review: serializers."""
