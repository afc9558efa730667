"""REST API under /api/v1 (FastAPI). Routes stay thin: they validate, call a service, shape the answer."""
