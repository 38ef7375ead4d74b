"""``python -m rsh``: the command line."""

from .cli.main import entry

entry()
