"""The corpus pack that carries training data to a remote machine: lossy within its stated steps, exact in
structure, and it never overwrites a corpus."""
import json
import shutil

import numpy as np
import pytest

from kinemo.cli import main
from kinemo.data.cache import Corpus, corpus_dir
from kinemo.data.travel import SCALES, decode, encode, pack, unpack
from kinemo.errors import UserError


def test_second_differences_round_trip_within_the_quantisation_step():
    rng = np.random.default_rng(0)
    lengths = np.array([7, 1, 2, 40])
    a = np.cumsum(rng.normal(0, 0.05, (lengths.sum(), 5, 3)), axis=0)     # a smooth-ish walk across takes
    for scale in (2048, 1000):
        e = encode(a, scale, lengths)
        assert e.dtype == np.int64 and e.shape == a.shape
        assert np.abs(decode(e, scale, lengths) - a).max() <= 0.5 / scale + 1e-6
    # takes are independent: each decodes alone to the same values
    e = encode(a, 1000, lengths)
    np.testing.assert_array_equal(decode(e[7:8], 1000, np.array([1])), decode(e, 1000, lengths)[7:8])


def test_pack_and_unpack_rebuild_the_chosen_splits(tiny_corpus, tmp_path, capsys):
    src = Corpus(corpus_dir(tiny_corpus))
    assert main(["data", "pack", str(tmp_path / "pack"), "--cache-dir", str(tiny_corpus), "--splits", "train"]) == 0
    assert "packed into" in capsys.readouterr().out
    assert main(["data", "unpack", str(tmp_path / "pack"), str(tmp_path / "root")]) == 0
    out = corpus_dir(tmp_path / "root")
    assert str(out) in capsys.readouterr().out
    got = Corpus(out)
    train = [t for t in src.takes if t["split"] == "train"]
    assert [t["id"] for t in got.takes] == [t["id"] for t in train]
    for t_src, t_got in zip(train, got.takes):
        a = slice(t_src["start"], t_src["start"] + t_src["frames"])
        b = slice(t_got["start"], t_got["start"] + t_got["frames"])
        assert np.abs(got.quats[b] - src.quats[a]).max() < 2 / SCALES["quats"]
        assert np.abs(got.positions[b] - src.positions[a]).max() <= 0.5 / SCALES["positions"] + 1e-6
        assert np.abs(got.root[b] - src.root[a]).max() <= 0.5 / SCALES["root"] + 1e-6
        np.testing.assert_array_equal(got.contacts[b], src.contacts[a])
        np.testing.assert_allclose(got.music_features[b], src.music_features[a], rtol=1e-3, atol=1e-3)
        assert {k: v for k, v in t_got.items() if k != "start"} == {k: v for k, v in t_src.items() if k != "start"}
    assert json.loads((out / "manifest.json").read_text()) == json.loads(
        (corpus_dir(tiny_corpus) / "manifest.json").read_text())
    with pytest.raises(UserError, match="not empty"):
        pack(tiny_corpus, tmp_path / "pack", ("train",))
    with pytest.raises(UserError, match="already holds a corpus"):
        unpack(tmp_path / "pack", tmp_path / "root")
    with pytest.raises(UserError, match="not a corpus pack"):
        unpack(tmp_path, tmp_path / "other")


def test_unpack_keeps_text_embeddings_already_in_the_cache_root(tiny_corpus, tmp_path):
    """The pack holds float16 embeddings; a full-precision file of the same name is the user's and stays."""
    src = tmp_path / "src"
    shutil.copytree(tiny_corpus, src)
    (src / "text").mkdir(exist_ok=True)
    emb = np.random.default_rng(0).normal(size=(3, 384)).astype(np.float32)
    for name in ("text-kept", "text-new"):
        np.savez(src / "text" / f"{name}.npz", emb=emb)
    pack(src, tmp_path / "pack", ("train",))
    root = tmp_path / "root"
    (root / "text").mkdir(parents=True)
    shutil.copy(src / "text" / "text-kept.npz", root / "text")
    before = (root / "text" / "text-kept.npz").read_bytes()
    unpack(tmp_path / "pack", root)
    assert (root / "text" / "text-kept.npz").read_bytes() == before
    new = np.load(root / "text" / "text-new.npz")["emb"]
    assert new.dtype == np.float32 and 0 < np.abs(new - emb).max() < 1e-2      # the float16 copy
