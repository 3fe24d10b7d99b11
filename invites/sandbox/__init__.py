"""Simulated identity vendors for tests, demos, benchmarks and users' CI.

One Starlette app plays Ecosuite, SoftwareOne and a tenant-header API on one base URL, as their
contracts describe them: seeded users in every state, credentials and tenants checked, documented
bodies, a count of invitation emails per user, and injectable faults.

Each vendor is one module (`ecosuite`, `softwareone`, `tenant_api`) holding a `VendorSandbox`
subclass; the shared core (`Sandbox`, faults, the app) knows none of them by name. Another vendor
plugs in as a `VendorSandbox` of its own: ``Sandbox(vendors=[*default_vendors(), MyVendor()])``
(the plug-in API is described in ``invites/sandbox/_core.py``).

In-process::

    app = create_app(Sandbox())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")

Over a socket::

    with serve(Sandbox(fault_rate=0.1, seed=1)) as running:
        httpx.get(running.url + "/users/eco-user-1", headers={"Authorization": ECOSUITE_TOKEN})

From a shell: ``invites sandbox --port 8765`` (or ``python -m invites.sandbox``); ``--users N``
seeds invitable users for bulk runs, and ``GET /__sandbox__/stats`` answers the email counts.

Needs the ``sandbox`` extra (starlette, uvicorn). The rest of ``invites`` never imports it.
"""

from ._app import create_app
from ._core import (
    RecordedRequest,
    Sandbox,
    VendorRoute,
    VendorSandbox,
    json_failure,
)
from ._data import (
    ECOSUITE_PROFILES,
    ECOSUITE_TOKEN,
    ECOSUITE_USER_1,
    ECOSUITE_USER_2,
    ECOSUITE_USER_FORBIDDEN,
    OTHER_TENANT_ID,
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_MEMBERSHIP_ACTIVE,
    SOFTWAREONE_MEMBERSHIP_DELETED,
    SOFTWAREONE_MEMBERSHIP_EXPIRED,
    SOFTWAREONE_MEMBERSHIP_INVITED,
    SOFTWAREONE_TOKEN,
    SOFTWAREONE_USER_ACTIVE,
    SOFTWAREONE_USER_DELETED,
    SOFTWAREONE_USER_EXPIRED,
    SOFTWAREONE_USER_INVITED,
    TENANT_API_KEY,
    TENANT_BEARER_TOKEN,
    TENANT_ID,
    TENANT_USER_COOLDOWN,
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    TENANT_USER_UNKNOWN,
    TENANT_USER_VERIFIED,
)
from ._faults import ConnectionDropped, Fault
from ._server import RunningSandbox, serve
from .ecosuite import EcosuiteSandbox
from .softwareone import SoftwareOneSandbox
from .tenant_api import TenantApiSandbox


def default_vendors() -> list[VendorSandbox]:
    """New objects for the built-in vendors: Ecosuite, SoftwareOne and the tenant-header API."""
    return [EcosuiteSandbox(), SoftwareOneSandbox(), TenantApiSandbox()]


__all__ = [
    "ECOSUITE_PROFILES",
    "ECOSUITE_TOKEN",
    "ECOSUITE_USER_1",
    "ECOSUITE_USER_2",
    "ECOSUITE_USER_FORBIDDEN",
    "OTHER_TENANT_ID",
    "SOFTWAREONE_ACCOUNT_ID",
    "SOFTWAREONE_MEMBERSHIP_ACTIVE",
    "SOFTWAREONE_MEMBERSHIP_DELETED",
    "SOFTWAREONE_MEMBERSHIP_EXPIRED",
    "SOFTWAREONE_MEMBERSHIP_INVITED",
    "SOFTWAREONE_TOKEN",
    "SOFTWAREONE_USER_ACTIVE",
    "SOFTWAREONE_USER_DELETED",
    "SOFTWAREONE_USER_EXPIRED",
    "SOFTWAREONE_USER_INVITED",
    "TENANT_API_KEY",
    "TENANT_BEARER_TOKEN",
    "TENANT_ID",
    "TENANT_USER_COOLDOWN",
    "TENANT_USER_INVITED",
    "TENANT_USER_INVITED_2",
    "TENANT_USER_UNKNOWN",
    "TENANT_USER_VERIFIED",
    "ConnectionDropped",
    "EcosuiteSandbox",
    "Fault",
    "RecordedRequest",
    "RunningSandbox",
    "Sandbox",
    "SoftwareOneSandbox",
    "TenantApiSandbox",
    "VendorRoute",
    "VendorSandbox",
    "create_app",
    "default_vendors",
    "json_failure",
    "serve",
]
