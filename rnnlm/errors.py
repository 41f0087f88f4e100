"""The one exception type for mistakes a user can fix.

Entry points catch it and print its message alone (no traceback): the message is one sentence that names
the bad thing and says what to change.
"""


class UserError(Exception):
    """A problem caused by the user's input or configuration; the message says how to fix it."""
