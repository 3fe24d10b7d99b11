"""Build the wheel and try it as a user would, outside the repository.

    python scripts/check_wheel.py

Builds the wheel from this checkout, checks that it holds only ``invites/`` and its dist-info,
installs it (extras ``sandbox,cli``) into a fresh virtual environment in a temporary folder, imports
it from there and runs ``invites demo``. Then installs PyPI's ``providers`` distribution next to it
and checks that neither breaks the other: both import, ``pip check`` passes, and uninstalling
either leaves the other whole. Needs the package registry. Exits non-zero on the first failure.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What a user's program does with the installed wheel: every adapter imports by its package name.
IMPORT_CHECK = """
import invites
import invites.providers.ecosuite, invites.providers.softwareone, invites.providers.tenant_api
root = invites.__file__.rsplit("/invites/", 1)[0]
assert "site-packages" in root, root
for name in invites.known_providers():
    assert invites.registry.provider_class(name).__module__.startswith("invites.providers."), name
print("invites imports from", root)
"""

#: PyPI's ``providers`` imports as itself, not as the adapters' folder.
FOREIGN_CHECK = """
import providers
assert "site-packages" in providers.__file__, providers.__file__
assert not hasattr(providers, "ecosuite")
print("providers imports from", providers.__file__)
"""


def run(*command: str | Path, cwd: Path) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], cwd=cwd, check=True)  # noqa: S603


def build_wheel(into: Path) -> Path:
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", into, ROOT, cwd=into)
    (wheel,) = into.glob("invites-*.whl")
    top_level = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    expected = {"invites", wheel.name.split("-py")[0] + ".dist-info"}
    if top_level != expected:
        raise SystemExit(f"the wheel holds {sorted(top_level)}, expected {sorted(expected)}")
    return wheel


def check(workdir: Path) -> None:
    wheel = build_wheel(workdir)
    venv = workdir / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=workdir)
    python, pip, cli = venv / "bin" / "python", venv / "bin" / "pip", venv / "bin" / "invites"
    run(pip, "install", "-q", f"{wheel}[sandbox,cli]", cwd=workdir)
    run(python, "-c", IMPORT_CHECK, cwd=workdir)
    run(cli, "demo", cwd=workdir)

    run(pip, "install", "-q", "providers", cwd=workdir)
    run(pip, "check", cwd=workdir)
    run(python, "-c", IMPORT_CHECK, cwd=workdir)
    run(python, "-c", FOREIGN_CHECK, cwd=workdir)
    run(cli, "demo", cwd=workdir)

    run(pip, "uninstall", "-q", "-y", "invites", cwd=workdir)
    run(python, "-c", FOREIGN_CHECK, cwd=workdir)
    run(pip, "install", "-q", "--no-deps", wheel, cwd=workdir)
    run(pip, "uninstall", "-q", "-y", "providers", cwd=workdir)
    run(python, "-c", IMPORT_CHECK, cwd=workdir)
    run(cli, "demo", cwd=workdir)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="invites-wheel-") as workdir:
        check(Path(workdir))
    print("the wheel installs, imports and runs, next to PyPI's providers too")
    return 0


if __name__ == "__main__":
    sys.exit(main())
