"""sns models."""
