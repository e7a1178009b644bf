"""`make extension`'s script builds a zip Blender's own validator accepts, with
the platform's wheels inside, and the add-on's wire modules are the backend's."""
from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import build_extension as B  # noqa: E402


def test_wire_copy_is_identical_to_the_backend():
    assert B.stale_wire_files() == [], "run: python tools/build_extension.py --sync-wire"


def test_addon_imports_neither_torch_nor_kinemo():
    for py in (REPO / "addon").rglob("*.py"):
        for line in py.read_text().splitlines():
            s = line.strip()
            assert not s.startswith(("import torch", "from torch", "import kinemo", "from kinemo")), (py, s)


@pytest.fixture(scope="module")
def linux_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # The wheel cache lives in build/ (ignored by git) so repeated runs do not download again.
    res = subprocess.run([sys.executable, str(REPO / "tools" / "build_extension.py"), "--platform", "linux-x64",
                          "--out", str(out)], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         timeout=600)
    assert res.returncode == 0, "the extension build failed (wheel download needs the package index):\n" \
        + res.stdout + res.stderr
    (z,) = out.glob("*.zip")
    return z


def test_linux_zip_validates_and_holds_its_wheels(linux_zip):
    assert linux_zip.name == "kinemo-0.1.0-linux_x64.zip"
    B.validate(linux_zip)  # raises with Blender's messages
    zf = zipfile.ZipFile(linux_zip)
    names = set(zf.namelist())
    manifest = tomllib.loads(zf.read("blender_manifest.toml").decode())
    assert manifest["platforms"] == ["linux-x64"]
    wheels = [w.removeprefix("./") for w in manifest["wheels"]]
    assert sorted(Path(w).name.split("-")[0] for w in wheels) == ["msgpack", "pyzmq"]
    assert set(wheels) <= names
    assert all("manylinux" in w for w in wheels)
    for w in wheels:  # each is a real wheel, not an empty placeholder
        with zipfile.ZipFile(zf.open(w)) as inner:
            assert any(n.endswith(".dist-info/WHEEL") for n in inner.namelist())
    assert {"__init__.py", "bridge.py", "wire/protocol.py", "wire/client.py"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    top = tomllib.loads((REPO / "blender_manifest.toml").read_text())
    assert {k: v for k, v in manifest.items() if k not in ("platforms", "wheels", "build")} == \
        {k: v for k, v in top.items() if k not in ("platforms", "wheels", "build")}


def test_wheel_platforms_cover_every_platform_with_both_packages():
    top = tomllib.loads((REPO / "blender_manifest.toml").read_text())
    for p in top["platforms"]:
        names = sorted(Path(w).name.split("-")[0] for w in top["wheels"] if p in B.blender_platforms(w))
        assert names == ["msgpack", "pyzmq"], p


def test_bad_manifest_source_is_rejected(tmp_path):
    (tmp_path / "__init__.py").write_text("def register(): pass\ndef unregister(): pass\n")
    (tmp_path / "blender_manifest.toml").write_text('schema_version = "1.0.0"\nid = "kinemo"\n')
    with pytest.raises(B.BuildError, match="rejects"):
        B.validate(tmp_path)
