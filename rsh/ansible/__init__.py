"""Ansible over rsh: the ``rsh`` connection plugin (``ansible_connection=rsh``).

The plugin itself is ``connection_plugins/rsh.py`` beside this file, a thin
``ConnectionBase`` over ``RshSession`` (``rsh.ansible.session``), which does
the work on rsh's blocking client and can be used and tested without
Ansible.  Point Ansible at the directory ``python -m rsh.ansible`` prints
(``connection_plugins =`` in ansible.cfg, or ``ANSIBLE_CONNECTION_PLUGINS``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PLUGIN_DIR"]

#: The directory to name in ansible.cfg's ``connection_plugins``.
PLUGIN_DIR = Path(__file__).resolve().parent / "connection_plugins"
