"""sns: permissions."""
