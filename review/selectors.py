"""review: selectors."""
