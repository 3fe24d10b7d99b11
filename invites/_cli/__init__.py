"""The pieces of the ``invites`` command line; :mod:`invites.cli` is the entry point."""
