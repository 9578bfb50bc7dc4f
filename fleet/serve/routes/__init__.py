"""Route modules: each defines routes(ctx) -> list of Starlette routes. See fleet/serve/app.py."""
