"""Show that the request-side contract tests catch each kind of wire mistake.

    python scripts/contract_mutations.py

Applies one mutation at a time to the adapters' source (drop ``X-Tenant-ID``, change the tenant
path, rename ``X-API-Key`` or ``Authorization``, a JSON body on SoftwareOne's resend, ``Bearer ``
on Ecosuite's token), runs ``tests/contracts/test_request_contracts.py``, restores the file, and
prints pytest's summary for each. Exits non-zero when a mutation leaves the tests green or the
source no longer holds the text a mutation replaces. It edits files in place (restored in
``finally``): do not run it while tests run from the same checkout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (name, file, text, replacement)
MUTATIONS = (
    (
        "drop X-Tenant-ID",
        "providers/tenant_api.py",
        'self._headers = {"X-Tenant-ID": self.settings.tenant_id}',
        "self._headers: dict[str, str] = {}",
    ),
    (
        "change the tenant path",
        "providers/tenant_api.py",
        'self.base_url + "/v1/users/"',
        'self.base_url + "/v1/tenants/" + self.settings.tenant_id + "/users/"',
    ),
    (
        "rename X-API-Key",
        "providers/tenant_api.py",
        'return ("X-API-Key", token)',
        'return ("X-Api-Token", token)',
    ),
    (
        "rename Authorization (Ecosuite)",
        "providers/ecosuite.py",
        'return ("Authorization", self._auth_prefix + token)',
        'return ("Authentication", self._auth_prefix + token)',
    ),
    (
        "rename Authorization (SoftwareOne, the base's default)",
        "invites/_delivery/provider.py",
        'return ("Authorization", "Bearer " + token)',
        'return ("Authorisation", "Bearer " + token)',
    ),
    (
        "JSON body on SoftwareOne's resend",
        "providers/softwareone.py",
        'yield Call("POST", member_url + "/resend-invite")',
        'yield Call("POST", member_url + "/resend-invite", json={})',
    ),
    (
        "Bearer prefix on Ecosuite's token",
        "providers/ecosuite.py",
        'self._auth_prefix = prefix + " " if prefix else ""',
        'self._auth_prefix = "Bearer "',
    ),
)


def run_contract_tests() -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    return subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
        [*command, "tests/contracts/test_request_contracts.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def main() -> int:
    caught = 0
    for name, file, text, replacement in MUTATIONS:
        path = ROOT / file
        original = path.read_text(encoding="utf-8")
        if text not in original:
            print(f"{name}: {file} no longer holds {text!r}; update this script")
            return 2
        try:
            path.write_text(original.replace(text, replacement, 1), encoding="utf-8")
            result = run_contract_tests()
        finally:
            path.write_text(original, encoding="utf-8")
        summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "no output"
        verdict = "caught" if result.returncode != 0 else "MISSED"
        caught += result.returncode != 0
        print(f"{verdict:<7} {name}: {summary}")
    print(f"{caught} of {len(MUTATIONS)} mutations caught")
    return 0 if caught == len(MUTATIONS) else 1


if __name__ == "__main__":
    sys.exit(main())
