# For mypy in a checkout, where the adapter lives in the top-level providers/ folder (the wheel
# installs the module itself here and leaves this stub out).
from providers.softwareone import SoftwareOneProvider as SoftwareOneProvider
from providers.softwareone import SoftwareOneSettings as SoftwareOneSettings
