"""HubSpot's calling-extensions SDK: built from npm into ``static/vendor/``, never committed.

The SDK is HubSpot's code under HubSpot's licence, versioned on npm; the repository keeps only
``js/package.json`` and its lock file. ``ensure_sdk()`` runs ``npm ci`` and the copy step
when the file is missing (a fresh clone, CI), so tests and ``make -C connectors/hubspot sdk``
produce it the same way. A wheel built after that step ships the file.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
SDK_FILE = STATIC_DIR / "vendor" / "calling-extensions-sdk.esm.js"
#: The npm project (only in a source checkout): connectors/hubspot/js.
JS_DIR = Path(__file__).resolve().parents[2] / "js"


class SdkUnavailable(RuntimeError):
    """The SDK file is missing and could not be built here (the reason says why)."""


def ensure_sdk(timeout: float = 300.0) -> Path:
    """The SDK file, building it with npm first when it is missing."""
    if SDK_FILE.is_file():
        return SDK_FILE
    if not (JS_DIR / "package.json").is_file():
        raise SdkUnavailable(f"{SDK_FILE} is missing and {JS_DIR} is not a source checkout")
    npm = shutil.which("npm")
    if npm is None:
        raise SdkUnavailable("npm is not installed: it is needed to fetch the HubSpot SDK")
    for args in ([npm, "ci", "--no-audit", "--no-fund"], [npm, "run", "build"]):
        try:
            done = subprocess.run(  # noqa: S603 - fixed arguments
                args, cwd=JS_DIR, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise SdkUnavailable(
                f"{' '.join(args[1:])} timed out (is the npm registry reachable?)"
            ) from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise SdkUnavailable(f"npm {' '.join(args[1:])} failed: {' | '.join(tail)}")
    if not SDK_FILE.is_file():
        raise SdkUnavailable(f"the build did not produce {SDK_FILE}")
    return SDK_FILE
