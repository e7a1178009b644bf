"""``kinemo bench server`` runs end to end (small sizes) and its numbers add up."""
from __future__ import annotations

import argparse
import json

import pytest

from kinemo.commands import bench


def test_bench_server_small(server, tmp_path, capsys):
    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    out = tmp_path / "bench.json"
    args = p.parse_args(["server", "--address", server.address, "--pings", "30", "--repeats", "3",
                         "--result-mb", "0.5", "--frames", "30", "--bones", "20", "--json", str(out)])
    assert bench.run(args) == 0
    r = json.loads(out.read_text())
    assert 0 < r["ping_ms"]["min"] <= r["ping_ms"]["median"] <= r["ping_ms"]["p95"] < 100
    for key in ("large_result", "typical_inbetween"):
        m = r[key]
        assert m["model_s"] > 0 and m["overhead_s"] > 0
        assert m["total_s"] == pytest.approx(m["model_s"] + m["overhead_s"])
        assert m["outside_share"] == pytest.approx(m["overhead_s"] / m["total_s"])
    assert r["large_result"]["result_bytes"] >= 0.5e6
    assert "inbetween" in r["typical_inbetween"]["what"]
    assert "ping round trip" in capsys.readouterr().out
