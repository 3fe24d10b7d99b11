# ruff: noqa: S105  (every credential here is fake and accepted only by the sandbox)
"""Credentials and seeded users of the simulated vendors.

Every value here is fake and accepted only by the sandbox. Tests, the demo and the benchmarks
import these names instead of repeating the literals.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

# --- Ecosuite -------------------------------------------------------------------------------------

ECOSUITE_TOKEN: Final = "sandbox-ecosuite-token"

ECOSUITE_USER_1: Final = "eco-user-1"
"""Full profile (timezone, userType, access); a resend succeeds."""
ECOSUITE_USER_2: Final = "eco-user-2"
"""Only the required profile fields; a resend succeeds."""
ECOSUITE_USER_FORBIDDEN: Final = "eco-forbidden"
"""A user the token may not manage: 403 on the profile and on a resend."""

ECOSUITE_PROFILES: Final[Mapping[str, Mapping[str, object]]] = MappingProxyType(
    {
        ECOSUITE_USER_1: MappingProxyType(
            {
                "email": "ada@example.com",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "timezone": "Europe/London",
                "userType": "admin",
                "access": MappingProxyType(
                    {
                        "startDate": "2025-01-06",
                        "endDate": "2026-12-31",
                        "preventDownload": "no",
                        "restrictProjects": "no",
                    }
                ),
            }
        ),
        ECOSUITE_USER_2: MappingProxyType(
            {
                "email": "grace@example.com",
                "firstName": "Grace",
                "lastName": "Hopper",
            }
        ),
    }
)
"""What `GET /users/{userId}` answers for each manageable Ecosuite user."""

# --- SoftwareOne ----------------------------------------------------------------------------------

SOFTWAREONE_TOKEN: Final = "idt:TKN-FAKE-0000:sandbox-not-a-secret"
SOFTWAREONE_ACCOUNT_ID: Final = "ACC-0000-0001"

# Each membership has a legacy id (AUSR-, the deprecated endpoint's path id) and a user id
# (USR-, the current endpoint's path id); both name the same membership of the account.
SOFTWAREONE_MEMBERSHIP_INVITED: Final = "AUSR-0000-0001"
SOFTWAREONE_USER_INVITED: Final = "USR-0000-0001"
SOFTWAREONE_MEMBERSHIP_ACTIVE: Final = "AUSR-0000-0002"
SOFTWAREONE_USER_ACTIVE: Final = "USR-0000-0002"
SOFTWAREONE_MEMBERSHIP_EXPIRED: Final = "AUSR-0000-0003"
SOFTWAREONE_USER_EXPIRED: Final = "USR-0000-0003"
SOFTWAREONE_MEMBERSHIP_DELETED: Final = "AUSR-0000-0004"
SOFTWAREONE_USER_DELETED: Final = "USR-0000-0004"

# --- Tenant-header --------------------------------------------------------------------------------

TENANT_ID: Final = "f1d47ff5-fb86-4c2c-a055-bd273415770b"
OTHER_TENANT_ID: Final = "fff96a5b-dc4a-43d0-9c20-9ac211ff6bf4"
"""A well-formed tenant the sandbox credentials do not belong to: 403 tenant_mismatch."""
TENANT_API_KEY: Final = "sandbox-tenant-api-key"
TENANT_BEARER_TOKEN: Final = "sandbox-tenant-bearer-token"

TENANT_USER_INVITED: Final = "a3e8b3cd-92f7-4c96-8976-5afdb2e921bc"
TENANT_USER_INVITED_2: Final = "243c55cd-bd75-417b-9d4c-385e1b3fc50c"
TENANT_USER_VERIFIED: Final = "d1bd28b9-8967-433a-8d11-9e2eb6a04a8c"
"""409 already_verified."""
TENANT_USER_COOLDOWN: Final = "40cf5113-05a4-462e-ae8c-99c04641f095"
"""422 invite_cooldown: a code the vendor does not document."""
TENANT_USER_UNKNOWN: Final = "00000000-0000-4000-8000-000000000000"
"""A well-formed id no user has: 404 not_found."""
