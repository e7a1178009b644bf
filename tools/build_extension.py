"""Build the Blender extension zips: ``make extension`` runs this.

Steps:

1. download the cp311 wheels named in the top-level ``blender_manifest.toml``
   (``pip download --only-binary=:all: --no-deps`` per platform tag) into
   ``build/extension/wheels`` (a cache; never committed);
2. stage ``build/extension/kinemo``: the manifest (its ``platforms`` narrowed
   to the ones asked for), ``addon/`` and the wheels those platforms need;
3. have Blender's own extension tool (``bl_pkg/cli/blender_ext.py`` bundled
   with bpy) build one zip per platform (``--split-platforms``: each zip keeps
   only its platform's wheels) into ``dist/``, then validate every zip with the
   same tool.

The wire modules are single-source: ``addon/wire/{protocol,client}.py`` must
be byte-identical to ``backend/kinemo/serve/``; the build stops if they are
stale (``--sync-wire`` rewrites them). bpy is not imported: the tool is found
through bpy's package location, so this runs in seconds.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "blender_manifest.toml"
ADDON = REPO / "addon"
WIRE_SOURCES = ("protocol.py", "client.py")
WIRE_SRC_DIR = REPO / "backend" / "kinemo" / "serve"
WIRE_DST_DIR = ADDON / "wire"
PLATFORMS = ("linux-x64", "windows-x64", "macos-arm64", "macos-x64")


class BuildError(Exception):
    pass


# --- the wire copy -------------------------------------------------------------

def stale_wire_files() -> list[str]:
    """Names in ``addon/wire`` that differ from (or lack) their backend source."""
    return [n for n in WIRE_SOURCES
            if not (WIRE_DST_DIR / n).is_file()
            or (WIRE_DST_DIR / n).read_bytes() != (WIRE_SRC_DIR / n).read_bytes()]


def sync_wire() -> list[str]:
    """Copy the backend's wire modules into the add-on; returns what changed."""
    changed = stale_wire_files()
    for n in changed:
        shutil.copyfile(WIRE_SRC_DIR / n, WIRE_DST_DIR / n)
    return changed


# --- wheels --------------------------------------------------------------------

def wheel_platform_tags(filename: str) -> list[str]:
    """``pyzmq-27.3.0-cp311-cp311-a.b.whl`` -> ``["a", "b"]``."""
    parts = Path(filename).name[:-len(".whl")].split("-")
    if len(parts) != 5:
        raise BuildError(f"not a wheel file name: {filename}")
    return parts[4].split(".")


def wheel_requirement(filename: str) -> str:
    parts = Path(filename).name.split("-")
    return f"{parts[0]}=={parts[1]}"


def blender_platforms(filename: str) -> set[str]:
    """Blender platforms a wheel serves (the same rule Blender's build applies)."""
    out = set()
    for tag in wheel_platform_tags(filename):
        if tag.endswith("universal2") and tag.startswith("macosx"):
            out |= {"macos-x64", "macos-arm64"}
        elif tag.startswith("macosx"):
            out.add("macos-arm64" if tag.endswith("arm64") else "macos-x64")
        elif tag.startswith("manylinux") and tag.endswith("x86_64"):
            out.add("linux-x64")
        elif tag == "win_amd64":
            out.add("windows-x64")
    return out


def download_wheels(wheels: list[str], dest: Path) -> None:
    """Fetch each manifest wheel (exact file name) into ``dest`` unless already there."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in wheels:
        name = Path(rel).name
        if (dest / name).is_file():
            continue
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "--no-deps", "--python-version", "3.11", "--implementation", "cp",
               "--abi", "cp311", "--dest", str(dest)]
        for tag in wheel_platform_tags(name):
            cmd += ["--platform", tag]
        cmd.append(wheel_requirement(name))
        res = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
        if res.returncode != 0:
            raise BuildError(f"could not download {name} (needs the package index):\n{res.stderr.strip()}")
        if not (dest / name).is_file():
            got = sorted(p.name for p in dest.glob(f"{name.split('-')[0]}-*.whl"))
            raise BuildError(f"pip downloaded {got}, not {name}; update the wheel list in {MANIFEST.name}")


# --- Blender's tool ------------------------------------------------------------

def blender_ext_module():
    """Blender's ``blender_ext.py`` (the code behind ``blender --command extension``)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("bpy (Blender as a Python module) is not installed; pip install -e '.[blender]'")
    base = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(base.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise BuildError(f"Blender's extension tool is not in {base}")
    mspec = importlib.util.spec_from_file_location("kinemo_blender_ext", found[-1])
    mod = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(mod)
    return mod


def run_blender_ext(mod, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = mod.main(list(args), args_internal=False)
    return rc, out.getvalue()


def validate(path: Path) -> None:
    """Blender's validation of an extension directory or zip; raises with its messages."""
    rc, text = run_blender_ext(blender_ext_module(), "validate", str(path))
    if rc != 0:
        raise BuildError(f"Blender's validator rejects {path.name}:\n{text.strip()}")


# --- build ---------------------------------------------------------------------

def _manifest_text(platforms: list[str], wheels: list[str]) -> str:
    """The manifest narrowed to ``platforms`` and their ``wheels`` (everything else verbatim)."""
    out = []
    for ln in MANIFEST.read_text().splitlines():
        item = ln.strip().rstrip(",").strip('"')
        if ln.startswith("platforms ="):
            ln = "platforms = [" + ", ".join(f'"{p}"' for p in platforms) + "]"
        elif item.startswith("./wheels/") and item not in wheels:
            continue
        out.append(ln)
    return "\n".join(out) + "\n"


def build(platforms: list[str], out_dir: Path, work: Path) -> list[Path]:
    """Build and validate one zip per platform; returns their paths."""
    stale = stale_wire_files()
    if stale:
        raise BuildError(f"addon/wire/{', '.join(stale)} differ from backend/kinemo/serve; "
                         "run tools/build_extension.py --sync-wire and commit")
    manifest = tomllib.loads(MANIFEST.read_text())
    unknown = sorted(set(platforms) - set(manifest["platforms"]))
    if unknown:
        raise BuildError(f"platforms {unknown} are not in the manifest's {manifest['platforms']}")
    wheels = [w for w in manifest["wheels"] if blender_platforms(w) & set(platforms)]
    for p in platforms:
        names = {Path(w).name.split("-")[0] for w in wheels if p in blender_platforms(w)}
        if names != {"pyzmq", "msgpack"}:
            raise BuildError(f"the manifest lists wheels {sorted(names)} for {p}; it needs pyzmq and msgpack")
    cache = work / "wheels"
    download_wheels(wheels, cache)

    stage = work / "kinemo"
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(ADDON, stage, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (stage / "blender_manifest.toml").write_text(_manifest_text(platforms, wheels))
    (stage / "wheels").mkdir()
    for w in wheels:
        shutil.copyfile(cache / Path(w).name, stage / "wheels" / Path(w).name)
    if tomllib.loads((stage / "blender_manifest.toml").read_text())["wheels"] != wheels:
        raise BuildError("could not narrow the manifest's wheel list; keep one wheel per line")

    out_dir.mkdir(parents=True, exist_ok=True)
    mod = blender_ext_module()
    rc, text = run_blender_ext(mod, "build", "--source-dir", str(stage), "--output-dir", str(out_dir),
                               "--split-platforms")
    if rc != 0:
        raise BuildError(f"Blender's build failed:\n{text.strip()}")
    version = manifest["version"]
    zips = []
    for p in platforms:
        z = out_dir / f"{manifest['id']}-{version}-{p.replace('-', '_')}.zip"
        if not z.is_file():
            raise BuildError(f"Blender's build did not write {z.name}:\n{text.strip()}")
        rc, vtext = run_blender_ext(mod, "validate", str(z))
        if rc != 0:
            raise BuildError(f"Blender's validator rejects {z.name}:\n{vtext.strip()}")
        zips.append(z)
    return zips


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--platform", action="append", choices=PLATFORMS,
                    help="build only this platform (repeatable; default: all four)")
    ap.add_argument("--out", type=Path, default=REPO / "dist", help="where the zips go (default dist/)")
    ap.add_argument("--work", type=Path, default=REPO / "build" / "extension",
                    help="staging and wheel cache (default build/extension)")
    ap.add_argument("--sync-wire", action="store_true",
                    help="copy backend/kinemo/serve/{protocol,client}.py into addon/wire and exit")
    args = ap.parse_args(argv)
    if args.sync_wire:
        changed = sync_wire()
        print("updated: " + ", ".join(changed) if changed else "addon/wire is up to date")
        return 0
    try:
        zips = build(args.platform or list(PLATFORMS), args.out.resolve(), args.work.resolve())
    except BuildError as e:
        print(f"build_extension: {e}", file=sys.stderr)
        return 1
    for z in zips:
        print(f"{z} ({z.stat().st_size / 1e6:.1f} MB, validated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
