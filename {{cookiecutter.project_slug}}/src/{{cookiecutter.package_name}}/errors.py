"""The one exception type for mistakes a user can fix.

Code anywhere in the project raises ``UserError("what is wrong; what to do")``. The command line
catches it and prints that single line instead of a traceback, then exits with ``exit_code``.
"""


class UserError(Exception):
    """A problem the user can fix: the message says what is wrong and what to do."""

    exit_code = 1


class UsageError(UserError):
    """A mistake in how the command was called (unknown flag, wrong type): exit code 2."""

    exit_code = 2


class NoPretrainedWeights(UserError):
    """Pretrained weights could not be downloaded (offline, nothing cached): exit code 3, so scripts
    such as the template's ``make quickstart`` can fall back to training from scratch."""

    exit_code = 3
