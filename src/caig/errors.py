"""Errors a user can fix. The CLI prints them as one line and exits with code 2, without a traceback."""


class UserError(Exception):
    """Bad input from a user: the message names what is wrong and how to fix it."""
