# For mypy in a checkout, where the adapter lives in the top-level providers/ folder (the wheel
# installs the module itself here and leaves this stub out).
from providers.ecosuite import EcosuiteProvider as EcosuiteProvider
from providers.ecosuite import EcosuiteSettings as EcosuiteSettings
