"""Delivery: a provider's resend from the vendor's flow to its result.

``provider`` (:class:`BaseProvider`, what an adapter subclasses), ``actions`` (the words
between a flow, the engine and a driver), ``engine`` (the sans-I/O delivery engine),
``requests`` (a vendor's call made a request),
``drivers`` (performing its actions, blocking or async), ``policy`` (what is retried, how
long to wait), ``credentials`` (the token and its refresh), ``reporting`` (each attempt on
the log and ``on_attempt``) and ``answers`` (reading vendor answers into errors).
"""
