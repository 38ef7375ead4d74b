"""The client library: the blocking ``Client`` and the asyncio ``AsyncClient``, and the
server pins they check.
"""
