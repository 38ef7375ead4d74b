"""I/O shared by client and server: frames over an asyncio transport, and TLS."""
