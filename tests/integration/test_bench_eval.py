"""The eval benches end to end on real Bandai takes: a small corpus built in tmp (three takes
moved to its test split) and the same takes as a folder of BVH files."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from kinemo.cli import main
from kinemo.data.cache import build

TEST_TAKES = ("dataset-1_walk_normal_001", "dataset-2_run_active_001", "dataset-2_walk-turn-left_feminine_001")


@pytest.fixture(scope="module")
def small_corpus(bandai_dir, tmp_path_factory):
    splits = tmp_path_factory.mktemp("splits")
    names = sorted(f.stem for f in bandai_dir.glob("*.bvh"))
    (splits / "test.txt").write_text("\n".join(TEST_TAKES) + "\n")
    (splits / "train.txt").write_text("\n".join(n for n in names if n not in TEST_TAKES) + "\n")
    (splits / "val.txt").write_text("")
    cache = tmp_path_factory.mktemp("cache")
    return build([bandai_dir], cache, workers=2, split_dir=splits, log=lambda s: None)


def check_inbetween(out, windows_at_most: int):
    res = json.loads((out / "inbetween.json").read_text())
    assert (out / "inbetween.png").stat().st_size > 10_000
    assert 0 < res["protocol"]["windows"] <= windows_at_most
    zv, lin = res["methods"]["zero-velocity"], res["methods"]["interpolation"]
    for n in ("5", "15", "30", "45"):
        assert lin[n]["l2p"] < zv[n]["l2p"] and lin[n]["l2q"] < zv[n]["l2q"]
        assert lin[n]["jerk"] < zv[n]["jerk"]            # holding then jumping to the target pops
        assert zv[n]["key_pos_m"] < 1e-5 and lin[n]["key_pos_m"] < 1e-5
        assert zv[n]["skate"] == 0.0                       # a held pose never moves its feet
    # longer gaps are harder for interpolation
    assert lin["45"]["l2p"] > lin["5"]["l2p"]
    return res


def test_bench_inbetween_on_the_corpus_test_split(small_corpus, tmp_path, capsys):
    out = tmp_path / "bench"
    rc = main(["bench", "inbetween", "--corpus", str(small_corpus), "--max-windows", "6", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    res = check_inbetween(out, 6)
    assert res["l2p_std_from"] == "train split" and res["protocol"]["takes"] <= len(TEST_TAKES)
    assert "interpolation" in text and "x" in text and "l2p" in text


def test_bench_inbetween_on_a_bvh_folder(bandai_dir, tmp_path, capsys):
    folder = tmp_path / "bvh"
    folder.mkdir()
    for t in TEST_TAKES[:2]:
        shutil.copy(bandai_dir / f"{t}.bvh", folder)
    (folder / "broken.bvh").write_text("HIERARCHY\nROOT hips\n{")
    out = tmp_path / "bench"
    rc = main(["bench", "inbetween", "--bvh-dir", str(folder), "--corpus", str(tmp_path / "no-corpus"),
               "--max-windows", "4", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "skipping" in text and "broken.bvh" in text
    res = check_inbetween(out, 4)
    assert res["l2p_std_from"] == "evaluated windows"



def test_bench_inbetween_with_a_key_every_n_frames_through_a_shot_longer_than_the_window(
        small_corpus, tiny_checkpoint, tmp_path, capsys):
    """The animator's layout: single keys every n + 1 frames through 121-frame shots, which the tiny model
    (90-frame window) fills window by window; its keys are met exactly and it is written beside, not over,
    the LaFAN1 figures."""
    out = tmp_path / "bench"
    rc = main(["bench", "inbetween", "--corpus", str(small_corpus), "--keys-every", "--shot", "121",
               "--transitions", "9,29", "--max-windows", "3", "--model", str(tiny_checkpoint), "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert not (out / "inbetween.json").exists() and (out / "inbetween-every.png").stat().st_size > 10_000
    res = json.loads((out / "inbetween-every.json").read_text())
    p = res["protocol"]
    assert p["keys_every"] and p["window"] == 121 and p["stride"] == 121 and 0 < p["windows"] <= 3
    lin, model = res["methods"]["interpolation"], res["methods"][f"model:{tiny_checkpoint.name}"]
    for n in ("9", "29"):
        assert model[n]["key_pos_m"] < 1e-5 and model[n]["key_rot_rad"] < 1e-5 and lin[n]["key_pos_m"] < 1e-5
        assert np.isfinite(model[n]["l2p"]) and model[n]["l2p"] > 0 and np.isfinite(res["ground_truth"][n]["skate"])
    assert lin["29"]["l2p"] > lin["9"]["l2p"]              # sparser keys are harder for interpolation

def test_bench_dance_skips_a_corpus_without_dances(small_corpus, tmp_path, capsys):
    rc = main(["bench", "dance", "--corpus", str(small_corpus), "--out", str(tmp_path / "b")])
    assert rc == 0
    assert "no dance takes" in capsys.readouterr().out
    assert not (tmp_path / "b").exists()


def test_bench_dance_scores_the_model_and_its_text(tiny_corpus, tiny_checkpoint, tmp_path):
    """The tiny model's dance to its training song, plain and steered by a caption: the caption reaches the
    model (a different dance) and the report says it was there."""
    from kinemo.data.cache import corpus_dir
    res = {}
    for name, extra in (("plain", []), ("walk", ["--text", "Someone walks forward casually."])):
        out = tmp_path / name
        rc = main(["bench", "dance", "--corpus", str(corpus_dir(tiny_corpus)), "--split", "train",
                   "--model", str(tiny_checkpoint), "--out", str(out), *extra])
        assert rc == 0
        res[name] = json.loads((out / "dance.json").read_text())
    plain, walk = (res[n]["rows"]["model, own music"] for n in ("plain", "walk"))
    assert plain["clips"] == walk["clips"] == 1
    assert plain["jerk"] != walk["jerk"]
    assert "Someone walks" in res["walk"]["model"] and "text" not in res["plain"]["model"]


def test_bench_text_scores_the_model_against_a_floor_of_its_own_size(bandai_dir, tiny_checkpoint, tmp_path,
                                                                    monkeypatch, capsys):
    """Two test takes captioned for the tiny model; the val takes give the FID floor at the model rows' count
    (here every val take, so the real row's FID again); speeds say what moved."""
    monkeypatch.setenv("KINEMO_CACHE", str(tmp_path / "cache"))        # the classifier's cache, not the user's
    splits = tmp_path / "splits"
    splits.mkdir()
    names = sorted(f.stem for f in bandai_dir.glob("*.bvh"))
    val = ("dataset-1_bow_active_001", "dataset-1_kick_normal_001")
    test = TEST_TAKES[:2]
    (splits / "test.txt").write_text("\n".join(test) + "\n")
    (splits / "val.txt").write_text("\n".join(val) + "\n")
    (splits / "train.txt").write_text("\n".join(n for n in names if n not in test + val) + "\n")
    corpus = build([bandai_dir], tmp_path / "corpus", workers=1, split_dir=splits, log=lambda s: None)
    out = tmp_path / "bench"
    rc = main(["bench", "text", "--corpus", str(corpus), "--model", str(tiny_checkpoint), "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "text.json").read_text())
    rows = res["rows"]
    assert list(rows) == ["real test", "random training clip", "real val, 2 clips", "model, test captions",
                          "model, held-out paraphrases"]
    for name, r in rows.items():
        assert r["clips"] == 2, name
        assert 0.0 <= r["content_accuracy"] <= 1.0 and 0.0 <= r["style_accuracy"] <= 1.0
        assert r["fid"] >= 0.0 and r["diversity"] > 0.0 and r["body_speed"] > 0.0
        # the per-label breakdown covers every clip and agrees with the overall figures
        for key, overall in (("per_content", "content_accuracy"), ("per_style", "style_accuracy")):
            assert sum(v["clips"] for v in r[key].values()) == 2, (name, key)
            assert sum(v["clips"] * v["accuracy"] for v in r[key].values()) / 2 == pytest.approx(r[overall])
    assert set(rows["model, test captions"]["per_content"]) == {"walk", "run"}
    assert rows["real val, 2 clips"]["fid"] == pytest.approx(rows["real test"]["fid"])
    # a walk and a run travel (2.4 m/s on average); a bow and a kick stay about in place (0.3 m/s)
    assert rows["real test"]["root_speed"] > 1.0 > 0.5 > rows["real val, 2 clips"]["root_speed"]
    # real feet planted on the floor barely slide (mocap: 0.15-0.3 m/s); real joints' jerk is tens of m/s^3
    assert 0.0 < rows["real test"]["skating"] < 0.5 and 20.0 < rows["real test"]["jerk"] < 500.0
    for name in ("model, test captions", "model, held-out paraphrases"):
        assert rows[name]["jerk"] > 0.0 and not rows[name]["skating"] < 0.0, name   # NaN: no foot on the floor
    assert all(0.0 <= r["implausible"] <= 1.0 for r in rows.values())    # a share of each row's clips
    assert (out / "text.png").stat().st_size > 10_000
    assert list((tmp_path / "cache" / "eval").glob("motion-classifier-*.pt"))
    # on the val split the two real splits swap roles: the bow and kick are evaluated, the walk and run the floor
    assert main(["bench", "text", "--corpus", str(corpus), "--model", str(tiny_checkpoint), "--split", "val",
                 "--out", str(out / "val")]) == 0
    val_rows = json.loads((out / "val" / "text.json").read_text())["rows"]
    assert list(val_rows) == ["real val", "random training clip", "real test, 2 clips", "model, val captions",
                              "model, held-out paraphrases"]
    assert val_rows["real val"]["root_speed"] == pytest.approx(rows["real val, 2 clips"]["root_speed"])
    assert val_rows["real test, 2 clips"]["fid"] == pytest.approx(val_rows["real val"]["fid"])
    printed = capsys.readouterr().out
    assert "real test, N clips' is the FID floor" in printed
    assert "by content (accuracy" in printed and "by style (accuracy" in printed
    # several seeds: each model figure is the mean of per-seed figures within their range; labels pool every clip
    assert main(["bench", "text", "--corpus", str(corpus), "--model", str(tiny_checkpoint), "--seeds", "2",
                 "--out", str(out / "seeds")]) == 0
    two = json.loads((out / "seeds" / "text.json").read_text())
    assert two["seeds"] == [0, 1] and "mean over 2 seeds" in capsys.readouterr().out
    for name in ("model, test captions", "model, held-out paraphrases"):
        r = two["rows"][name]
        assert r["seeds"] == 2 and r["clips"] == 2
        for m in ("content_accuracy", "fid", "body_speed", "jerk"):
            lo, hi = r["spread"][m]
            assert lo <= r[m] <= hi, (name, m)
        assert sum(v["clips"] for v in r["per_content"].values()) == 4
        # the first seed is the one-seed run's draw
        assert rows[name]["fid"] in (pytest.approx(r["spread"]["fid"][0]), pytest.approx(r["spread"]["fid"][1]))
    assert two["rows"]["real test"] == rows["real test"]
    assert main(["bench", "text", "--corpus", str(corpus), "--seeds", "0"]) == 2
    assert "--seeds must be at least 1" in capsys.readouterr().err


def test_unknown_baseline_is_a_clear_error(small_corpus, tmp_path, capsys):
    rc = main(["bench", "inbetween", "--corpus", str(small_corpus), "--baselines", "cubic", "--out", str(tmp_path)])
    assert rc == 2 and "unknown baseline 'cubic'" in capsys.readouterr().err


def test_classifier_features_ignore_place_and_facing(small_corpus):
    from kinemo.core import rotations as R
    from kinemo.data.cache import Corpus
    from kinemo.eval.classifier import frame_features
    pos = np.asarray(Corpus(small_corpus).clip(0).positions, np.float64)
    yaw = R.axis_angle_to_quat(np.array([0.0, 2.0, 0.0]))
    moved = R.quat_apply(yaw, pos) + np.array([3.0, 0.0, -7.0])
    assert np.allclose(frame_features(pos), frame_features(moved), atol=1e-4)


def test_a_shipped_classifier_is_used_only_for_the_training_split_it_was_trained_on(small_corpus, tmp_path):
    from dataclasses import replace
    from kinemo.data.cache import Corpus
    from kinemo.eval.classifier import SHIPPED, ClassifierConfig, load_or_train
    corpus, cfg, logs = Corpus(small_corpus), ClassifierConfig(steps=20, batch=8), []
    assert SHIPPED.is_file()                                   # the one the text bench reads on the real corpus
    first = load_or_train(corpus, cfg, tmp_path / "a", log=logs.append, shipped=tmp_path / "none.pt")
    assert first.info["origin"] == "trained" and any("training the motion classifier" in m for m in logs)
    shipped = tmp_path / "shipped.pt"
    next((tmp_path / "a" / "eval").glob("*.pt")).rename(shipped)     # as if shipped; nothing cached now
    logs.clear()
    again = load_or_train(corpus, cfg, tmp_path / "b", log=logs.append, shipped=shipped)
    assert again.info["origin"] == "shipped" and logs == []
    pos = [np.asarray(corpus.clip(i).positions) for i in range(3)]
    np.testing.assert_array_equal(again.features(pos), first.features(pos))
    other = load_or_train(corpus, replace(cfg, seed=1), tmp_path / "b", log=logs.append, shipped=shipped)
    assert other.info["origin"] == "trained" and "another training split or config" in logs[0]


def test_bench_long_reports_every_piece_of_a_motion_longer_than_the_window(tiny_corpus, tiny_checkpoint, tmp_path):
    """The tiny model (90-frame windows) asked for 7 s = 210 frames: three windows stitched, cut into 2 s pieces
    (the last one 1 s); shares in [0, 1], and the real takes' figures beside them."""
    from kinemo.data.cache import corpus_dir
    out = tmp_path / "long"
    rc = main(["bench", "long", "--corpus", str(corpus_dir(tiny_corpus)), "--split", "train", "--model",
               str(tiny_checkpoint), "--text", "Someone walks forward casually.", "--seconds", "7", "--segment", "2",
               "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "long.json").read_text())
    row = res["captions"]["Someone walks forward casually."]
    assert len(row["crossed_legs"]) == len(row["ankle_span"]) == 4
    assert all(0.0 <= x <= 1.0 for x in row["crossed_legs"])
    assert 0.0 <= res["real"]["crossed_legs"] < 0.05 and 0.05 < res["real"]["ankle_span"] < 0.4   # real takes
    # two joins, each seen by the seam stencils on both of its edges; real jerk is a few hundred m/s^3
    assert np.isfinite(row["join_jerk"]) and row["join_jerk"] > 0 and 50 < res["real"]["jerk"] < 2000
    assert (out / "long.png").stat().st_size > 10_000
