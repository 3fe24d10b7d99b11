"""Settings: what configures a provider, checked before anything is sent.

``fields`` (:class:`ProviderSettings` and ``setting()``), ``checks`` (the value checks a
key declares), ``proxy`` (the proxy setting and what it names), ``structuring`` (a
mapping into settings, every problem with its key path), ``secret`` (a value that never
shows itself) and ``identity`` (whose users a provider reaches: the keys of every
record).
"""
