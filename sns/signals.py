"""sns: signals."""
