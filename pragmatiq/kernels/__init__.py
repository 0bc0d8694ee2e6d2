"""pragmatiq.kernels."""
