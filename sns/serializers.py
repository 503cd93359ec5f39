"""sns: serializers."""
