"""review: signals."""
