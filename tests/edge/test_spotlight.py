"""edge.spotlight: a burst of taps never makes a screen flicker, and the last tap is shown."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.spotlight import Debouncer


def _cmd(gtin: str) -> dict:
    return {"cmd": "show_product", "gtin": gtin}


def test_first_tap_is_immediate_and_a_burst_shows_only_the_last_later():
    d = Debouncer(min_show_s=3.0)
    assert d.offer("s1", _cmd("A"), 0.0) == _cmd("A")
    assert d.offer("s1", _cmd("B"), 0.5) is None
    assert d.offer("s1", _cmd("C"), 1.0) is None
    assert d.due(2.9) == [] and d.next_due() == 3.0
    assert d.due(3.0) == [("s1", _cmd("C"))]
    assert d.due(10.0) == [] and d.held_total == 1 and d.replaced_total == 1


def test_same_product_passes_through_and_cancels_a_pending_switch():
    d = Debouncer(min_show_s=3.0)
    d.offer("s1", _cmd("A"), 0.0)
    assert d.offer("s1", _cmd("B"), 1.0) is None
    assert d.offer("s1", _cmd("A"), 1.5) == _cmd("A")
    assert d.due(5.0) == []


def test_screens_are_independent():
    d = Debouncer(min_show_s=3.0)
    d.offer("s1", _cmd("A"), 0.0)
    assert d.offer("s2", _cmd("B"), 0.1) == _cmd("B")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.sampled_from("ABCD")), min_size=1, max_size=40))
def test_pictures_change_at_most_once_per_min_show_and_the_last_tap_wins(taps):
    d = Debouncer(min_show_s=3.0)
    now, shown = 0.0, []
    for gap, gtin in taps:
        now += gap
        for _screen, cmd in d.due(now):
            shown.append((now, cmd["gtin"]))
        sent = d.offer("s1", _cmd(gtin), now)
        if sent is not None:
            shown.append((now, gtin))
    end = now + 3.001  # past min_show_s whatever the float rounding of the sums above
    for _screen, cmd in d.due(end):
        shown.append((end, cmd["gtin"]))
    changes = [(t, g) for i, (t, g) in enumerate(shown) if i == 0 or shown[i - 1][1] != g]
    for (t0, _), (t1, _) in zip(changes, changes[1:], strict=False):
        assert t1 - t0 >= 3.0 - 1e-9
    assert shown[-1][1] == taps[-1][1]
