"""MLOps pipeline stages."""
