"""The admin's audit log at 100 000 history rows, against Django's own LogEntry changelist."""
