"""review models."""
