# For mypy in a checkout, where the adapter lives in the top-level providers/ folder (the wheel
# installs the module itself here and leaves this stub out).
from providers.tenant_api import TenantApiProvider as TenantApiProvider
from providers.tenant_api import TenantApiSettings as TenantApiSettings
