"""File transfer (``put``/``get``): the rules both roles share, the sender, the receiver, and
how a call's arguments become transfers.  Files, yes; sockets, no.
"""
