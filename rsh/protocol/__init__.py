"""The wire protocol, without I/O: frames, messages, authentication, and each role's connection state machine.

Nothing here imports a socket, asyncio, ssl or subprocess (tests/test_layers.py
says so): bytes in, events out, bytes to send out.
"""
