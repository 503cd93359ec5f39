"""platform_core: serializers."""
