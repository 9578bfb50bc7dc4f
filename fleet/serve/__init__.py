"""`fleet serve`: one HTTP(S) server for the update repository, device check-ins, network-server pushes
and the dashboard. Features are route modules in fleet/serve/routes/ (see app.py)."""
