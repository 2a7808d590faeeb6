"""Server benchmark: FlagShip under gunicorn and uvicorn with PostgreSQL and Redis (issue 5)."""
