"""``python -m rsh.ansible``: print the directory of the connection plugin, for ansible.cfg."""

from __future__ import annotations

from . import PLUGIN_DIR

print(PLUGIN_DIR)
