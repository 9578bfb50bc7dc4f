"""Route modules: each defines register(router, ctx). See fleet/serve/app.py."""
