"""The batch prefetcher: same items, same order, errors where they belong."""
import threading

import numpy as np
import pytest

from kinemo.train.prefetch import Prefetcher


def _draws(seed: int):
    rng = np.random.default_rng(seed)
    return lambda: rng.normal(size=3)


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_prefetched_items_are_the_synchronous_ones_in_order(depth):
    sync = _draws(5)
    want = [sync() for _ in range(40)]
    p = Prefetcher(_draws(5), depth)
    got = [next(p) for _ in range(40)]
    p.close()
    np.testing.assert_array_equal(np.stack(got), np.stack(want))


def test_an_error_in_draw_is_raised_by_next_after_the_items_before_it():
    n = iter(range(3))

    def draw():
        i = next(n)
        if i == 2:
            raise ValueError("bad window")
        return i

    p = Prefetcher(draw, 2)
    assert [next(p), next(p)] == [0, 1]
    with pytest.raises(ValueError, match="bad window"):
        next(p)
    p.close()


def test_close_stops_the_thread_while_it_waits_on_a_full_queue():
    p = Prefetcher(lambda: 1, 1)
    next(p)
    p.close()
    assert not any(t.name == "kinemo-prefetch" and t.is_alive() for t in threading.enumerate())
