"""review: permissions."""
