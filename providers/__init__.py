"""Vendor adapters for :mod:`invites`, one module per vendor, imported only when configured."""
