"""Pre-dial policies (DESIGN section 4): pure decisions over a policy snapshot."""
