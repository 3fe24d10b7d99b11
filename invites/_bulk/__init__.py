"""Bulk runs: many invitees, one outcome each.

``resend_one`` (one invitee's resend, under a run's ledger, turned into an
:class:`~invites.bulk.Outcome`) and ``threads`` (the thread runner of
:func:`invites.resend_many`). The public face is :mod:`invites.bulk`.
"""
