"""Errors shown to users as plain messages (no traceback)."""


class UserError(Exception):
    """An error caused by the user's input or environment: printed without a traceback, exit 2."""
