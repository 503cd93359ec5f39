"""sns: selectors."""
