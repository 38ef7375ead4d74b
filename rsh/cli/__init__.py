"""The ``rsh`` command line: one module per subcommand and the options they share."""
