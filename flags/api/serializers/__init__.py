"""Input (validate) and output (render) serializers of the management API."""
