"""The real-time change stream (Server-Sent Events), served from the ASGI application."""
