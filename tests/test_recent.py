"""apps.core.recent: values kept a few seconds per process, read again once when they run out."""

import threading
from concurrent.futures import ThreadPoolExecutor

from apps.core.recent import Recent


def test_a_value_is_kept_until_it_runs_out_and_forgotten_on_demand():
    loads = []
    kept = Recent(ttl=60)
    load = lambda: loads.append(1) or len(loads)  # noqa: E731
    assert kept.get("a", load) == 1 and kept.get("a", load) == 1 and len(loads) == 1
    kept.forget("a")
    assert kept.get("a", load) == 2
    kept.forget_where(lambda value: value == 2)
    assert kept.get("a", load) == 3
    gone = Recent(ttl=0)
    assert gone.get("a", load) == 4 and gone.get("a", load) == 5


def test_a_value_refused_by_keep_is_read_again_next_time():
    kept, loads = Recent(ttl=60), []
    for _ in range(3):
        assert kept.get("token", lambda: loads.append(1), keep=lambda value: value is not None) is None
    assert len(loads) == 3


def test_a_burst_as_a_value_runs_out_reads_it_once_and_the_rest_use_the_old_one():
    kept = Recent(ttl=0)  # always run out
    kept.get("catalogue", lambda: "old")
    started, release, loads = threading.Event(), threading.Event(), []

    def slow_load():
        loads.append(1)
        started.set()
        release.wait(timeout=10)
        return "new"

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(kept.get, "catalogue", slow_load)
        assert started.wait(timeout=10)
        assert [kept.get("catalogue", slow_load) for _ in range(20)] == ["old"] * 20  # none waits, none reads
        release.set()
        assert first.result(timeout=10) == "new"
    assert len(loads) == 1
    assert kept.get("catalogue", lambda: "newer") == "newer"  # the load done, the next one that runs out reads
