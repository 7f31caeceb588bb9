"""The HTTP API: FastAPI application, settings, routers, services and model loading."""
