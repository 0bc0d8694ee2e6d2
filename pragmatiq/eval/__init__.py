"""pragmatiq.eval."""
