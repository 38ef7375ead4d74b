"""The interactive prompt (``rsh HOST``), built on prompt_toolkit above the client library."""
