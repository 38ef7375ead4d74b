"""The server: the listener, each connection's asyncio pump, the commands it runs, and the
rules for who may connect and what they may run.
"""
