"""Simulated identity vendors for tests, demos, benchmarks and users' CI.

One Starlette app plays Ecosuite, SoftwareOne and a tenant-header API on one base URL, as their
contracts describe them: seeded users in every state, credentials and tenants checked, documented
bodies, a count of invitation emails per user, and injectable faults.

In-process::

    app = create_app(Sandbox())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")

Over a socket::

    with serve(Sandbox(fault_rate=0.1, seed=1)) as running:
        httpx.get(running.url + "/users/eco-user-1", headers={"Authorization": ECOSUITE_TOKEN})

From a shell: ``python -m invites.sandbox --port 8765``.

Needs the ``sandbox`` extra (starlette, uvicorn). The rest of ``invites`` never imports it.
"""

from ._app import ConnectionDropped, Fault, RecordedRequest, Sandbox, create_app
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
from ._server import RunningSandbox, serve

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
    "Fault",
    "RecordedRequest",
    "RunningSandbox",
    "Sandbox",
    "create_app",
    "serve",
]
