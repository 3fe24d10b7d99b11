"""Pacing: how fast a provider may send, alone or shared.

``local`` (the pacer interface and this process's fixed rate), ``choice`` (the pacer the
settings ask for), ``control`` and ``adaptive`` (a learned rate: the pure controller and
its local pacer), ``announced`` (a vendor's RateLimit fields), ``redis_store`` and
``redis_script`` (one pace shared by every process through Redis).
"""
