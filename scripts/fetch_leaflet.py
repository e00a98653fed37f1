"""Install Leaflet (the map library of the panel's Map page) from the npm registry into
admin/static/vendor/leaflet, checked against the registry's published sha512.

Run by `make install` (so by `make run` and `make test`); does nothing when the pinned
version is already there. Only the package's dist/ files are kept (Leaflet is BSD-2-Clause;
its licence is copied beside them).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

VERSION = "1.9.4"
REGISTRY = os.environ.get("NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")
TARBALL = f"{REGISTRY}/leaflet/-/leaflet-{VERSION}.tgz"
INTEGRITY = (  # the registry's dist.integrity for this version
    "sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA=="
)
TARGET = Path(__file__).resolve().parent.parent / "admin" / "static" / "vendor" / "leaflet"
KEEP = ("package/dist/leaflet.js", "package/dist/leaflet.css", "package/LICENSE")


def main() -> int:
    stamp = TARGET / "VERSION"
    if stamp.exists() and stamp.read_text().strip() == VERSION:
        return 0
    print(f"installing Leaflet {VERSION} from {REGISTRY} ...", flush=True)
    try:
        with urllib.request.urlopen(TARBALL, timeout=60) as answer:  # noqa: S310 - https
            data = answer.read()
    except OSError as error:
        print(f"cannot download Leaflet from the npm registry: {error}", file=sys.stderr)
        return 1
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != INTEGRITY:
        print(f"Leaflet {VERSION}: the download does not match its sha512", file=sys.stderr)
        return 1
    TARGET.mkdir(parents=True, exist_ok=True)
    (TARGET / "images").mkdir(exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive.getmembers():
            name = member.name
            wanted = name in KEEP or (
                name.startswith("package/dist/images/") and name.endswith(".png")
            )
            if not wanted or not member.isfile():
                continue
            source = archive.extractfile(member)
            assert source is not None
            relative = name.removeprefix("package/dist/").removeprefix("package/")
            (TARGET / relative).write_bytes(source.read())
    stamp.write_text(VERSION + "\n")
    print(f"Leaflet {VERSION} installed in {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
