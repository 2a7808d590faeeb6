"""Management API views, by domain."""
