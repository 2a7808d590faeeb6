"""The admin at scale (issue 16): 10 000 flags, a million history rows."""
