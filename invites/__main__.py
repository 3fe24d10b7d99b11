"""``python -m invites``: the same as the ``invites`` command."""

import sys

from invites.cli import main

sys.exit(main())
