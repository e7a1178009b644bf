"""Shared fixtures. Tests that need ../shared skip with a clear reason when it is absent."""
from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KINEMO_SHARED", REPO.parent / "shared"))
BANDAI_TAR = SHARED / "data" / "bandai-namco-motion" / "bandai-namco-motion.tar.xz"
DANCE_DIR = SHARED / "data" / "dance-music"

# A fixed handful of real takes spanning both Bandai sets, contents and styles.
BANDAI_SAMPLE = (
    "dataset-1_walk_normal_001.bvh",
    "dataset-1_bow_active_001.bvh",
    "dataset-1_kick_normal_001.bvh",
    "dataset-1_dance-short_normal_001.bvh",
    "dataset-2_wave-left-hand_elderly_001.bvh",
    "dataset-2_run_active_001.bvh",
    "dataset-2_walk-turn-left_feminine_001.bvh",
)


def need_shared(path: Path = BANDAI_TAR) -> Path:
    if not path.exists():
        pytest.skip(f"needs the shared data set at {path} (absent on user machines; CI has it)")
    return path


@pytest.fixture(scope="session")
def bandai_dir(tmp_path_factory) -> Path:
    """A directory with the BANDAI_SAMPLE takes extracted from the shared archive."""
    tar = need_shared()
    out = tmp_path_factory.mktemp("bandai")
    wanted = set(BANDAI_SAMPLE)
    with tarfile.open(tar, "r:xz") as tf:
        for m in tf:
            name = os.path.basename(m.name)
            if name in wanted and m.isfile():
                (out / name).write_bytes(tf.extractfile(m).read())
                wanted.discard(name)
                if not wanted:
                    break
    assert not wanted, f"takes missing from the archive: {sorted(wanted)}"
    return out


@pytest.fixture(scope="session")
def dance_dir() -> Path:
    """The shared dance-music folder (read in place: .npz points and .ogg songs)."""
    return need_shared(DANCE_DIR / "DANCE_W_22.npz").parent


@pytest.fixture(scope="session")
def bandai_files(bandai_dir) -> list[Path]:
    return [bandai_dir / n for n in BANDAI_SAMPLE]


TINY_DANCES = ("DANCE_C_2",)     # one real dance with its song, so the tiny model sees music too
TINY_VAL = ("dataset-1_kick_normal_001",)


@pytest.fixture(scope="session")
def tiny_corpus(bandai_dir, dance_dir, tmp_path_factory) -> Path:
    """A small real corpus (the Bandai sample + one dance) built by the real pipeline."""
    import shutil

    from kinemo.data.cache import build
    src = tmp_path_factory.mktemp("tiny-src")
    for name in TINY_DANCES:
        for ext in (".npz", ".ogg"):
            shutil.copy(dance_dir / f"{name}{ext}", src / f"{name}{ext}")
    splits = tmp_path_factory.mktemp("tiny-splits")
    names = [n[:-4] for n in BANDAI_SAMPLE] + list(TINY_DANCES)
    (splits / "train.txt").write_text("\n".join(n for n in names if n not in TINY_VAL) + "\n")
    (splits / "val.txt").write_text("\n".join(TINY_VAL) + "\n")
    (splits / "test.txt").write_text("")
    root = tmp_path_factory.mktemp("tiny-cache")
    build([bandai_dir, src], root, workers=1, split_dir=splits, log=lambda s: None)
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_corpus, tmp_path_factory) -> Path:
    """The ``tiny`` config trained for real on :func:`tiny_corpus` (about a minute on 2 CPU cores)."""
    from kinemo.data.cache import corpus_dir
    from kinemo.model.config import CONFIGS
    from kinemo.train.loop import Run, train
    out = tmp_path_factory.mktemp("tiny-run")
    return train(CONFIGS["tiny"], Run(out=out, corpus=corpus_dir(tiny_corpus), cache_dir=tiny_corpus / "text"),
                 log=lambda s: None)


def pytest_sessionfinish(session, exitstatus):
    session.config._kinemo_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """bpy 4.5's C++ exit handler can deadlock at interpreter exit (its
    delayed-close thread never wakes), which would hang CI after a green run.
    Once pytest has reported everything, leave without running exit handlers."""
    if "bpy" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(getattr(config, "_kinemo_exitstatus", 0))
