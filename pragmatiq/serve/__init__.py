"""pragmatiq.serve."""
