"""The built-in vendor adapters, one module per vendor, imported only when configured.

The repository keeps them in its top-level ``providers/`` folder and the wheel installs that folder
as this package, so an installed distribution claims no top-level name but ``invites``. In a
checkout, or an editable install of one, the adapters are not in this folder: its path then names
the repository's ``providers/`` folder, so ``invites.providers.ecosuite`` imports the same module
everywhere.
"""

import os

_HERE = os.path.dirname(__file__)
_CHECKOUT = os.path.join(os.path.dirname(os.path.dirname(_HERE)), "providers")

# Only where this folder lacks the adapters (never in the wheel, whatever else is installed).
if not os.path.isfile(os.path.join(_HERE, "ecosuite.py")) and os.path.isfile(
    os.path.join(_CHECKOUT, "ecosuite.py")
):
    __path__.append(_CHECKOUT)
