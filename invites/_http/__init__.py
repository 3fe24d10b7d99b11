"""HTTP: how a provider's requests travel and its answers are read.

``clients`` (the clients a provider owns or borrows), ``transports`` (its own httpx
transports over httpcore's public pools), ``bodies`` and ``decoding`` (bounded body
reading), ``deadline`` (the resend's deadline inside socket operations), ``loops`` (async
clients per event loop) and ``proxies`` (which proxy, by httpx's rules).
"""
