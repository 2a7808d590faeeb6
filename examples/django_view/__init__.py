"""A minimal Django app using one process-wide FlagShip client (see ../README.md)."""
