"""Vendor adapters for :mod:`invites`, one module per vendor, imported only when configured.

This folder is installed as ``invites.providers`` (without this file): import the adapters by that
name, which a checkout resolves to this folder too.
"""
