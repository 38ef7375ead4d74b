"""Ansible's connection plugins directory: Ansible loads ``rsh.py`` from here by path (this file makes it importable as part of rsh, too)."""
