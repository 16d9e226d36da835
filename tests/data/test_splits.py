"""Leak-proof splits: groups never straddle sides, splits are deterministic, frame splits must be forced."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from kinepose.data.splits import LeakageWarning, frame_split, group_split, make_split
from kinepose.errors import KineposeError

GROUPS = np.repeat(np.arange(10), [5, 3, 8, 2, 6, 4, 7, 1, 9, 5])  # 10 subjects, 50 frames


def _check_partition(split: dict, n: int) -> None:
    parts = [split["train"], split["val"], split["test"]]
    for p in parts:
        assert p.dtype == np.int64 and np.all(np.diff(p) > 0)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n))


def test_group_split_keeps_groups_whole():
    s = group_split(GROUPS, test_fraction=0.3, seed=1, val_fraction=0.2)
    _check_partition(s, len(GROUPS))
    sides = [set(GROUPS[s[k]].tolist()) for k in ("train", "val", "test")]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2]) and not (sides[1] & sides[2])
    assert [len(x) for x in sides] == [5, 2, 3]  # fractions count groups
    assert s["groups"]["test"] == sorted(sides[2]) and s["leaky"] is False and s["kind"] == "group"


def test_group_split_deterministic_and_seeded():
    a, b = group_split(GROUPS, seed=3), group_split(GROUPS, seed=3)
    for k in ("train", "val", "test"):
        np.testing.assert_array_equal(a[k], b[k])
    assert a["val"].size == 0
    seeds = {tuple(group_split(GROUPS, seed=s)["groups"]["test"]) for s in range(6)}
    assert len(seeds) > 1


def test_group_split_string_groups_and_small_counts():
    g = np.array(["ann", "bob", "ann", "cy", "bob"])
    s = group_split(g, test_fraction=0.9)  # rounding would take all 3: one group stays in train
    assert len(s["groups"]["train"]) == 1 and len(s["groups"]["test"]) == 2
    s = group_split(["a", "b"], test_fraction=0.1)
    assert len(s["train"]) == 1 and len(s["test"]) == 1


def test_group_split_errors():
    with pytest.raises(KineposeError, match="at least 2 groups, got 1"):
        group_split(np.zeros(20))
    with pytest.raises(KineposeError, match="at least 3 groups"):
        group_split([1, 2], val_fraction=0.2)
    with pytest.raises(KineposeError, match="test_fraction"):
        group_split(GROUPS, test_fraction=0.0)
    with pytest.raises(KineposeError, match="leaves nothing to train on"):
        group_split(GROUPS, test_fraction=0.6, val_fraction=0.4)
    with pytest.raises(KineposeError, match=r"groups: expected shape \(N,\)"):
        group_split(np.zeros((4, 2)))


def test_frame_split_refuses_without_force():
    with pytest.raises(KineposeError, match="neighbouring.*BIWI.*1.33.*2.66-3.47.*force=True"):
        frame_split(100, 0.3, 0)


def test_frame_split_forced_warns_and_is_marked():
    with pytest.warns(LeakageWarning, match="marked leaky"):
        s = frame_split(100, 0.3, 0, force=True, val_fraction=0.1)
    _check_partition(s, 100)
    assert (len(s["train"]), len(s["val"]), len(s["test"])) == (60, 10, 30)
    assert s["leaky"] is True and s["kind"] == "frame"
    assert issubclass(LeakageWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LeakageWarning)
        again = frame_split(100, 0.3, 0, force=True, val_fraction=0.1)
        np.testing.assert_array_equal(again["test"], s["test"])  # deterministic
        with pytest.raises(KineposeError, match="n: expected"):
            frame_split(-1, force=True)


@pytest.mark.parametrize("kind", ["identity", "subject", "sequence"])
def test_make_split_group_kinds(kind):
    s = make_split(kind, GROUPS, test_fraction=0.3, seed=0)
    ref = group_split(GROUPS, 0.3, 0)
    np.testing.assert_array_equal(s["test"], ref["test"])
    assert s["kind"] == kind and s["leaky"] is False


def test_make_split_frame_and_errors():
    with pytest.raises(KineposeError, match="force=True"):
        make_split("frame", GROUPS)
    with pytest.warns(LeakageWarning):
        s = make_split("frame", GROUPS, force=True)
    assert s["leaky"] is True and s["kind"] == "frame" and len(s["test"]) == 15
    with pytest.warns(LeakageWarning):
        assert len(make_split("frame", 20, force=True)["test"]) == 6
    with pytest.raises(KineposeError, match="kind: expected one of"):
        make_split("random", GROUPS)
    with pytest.raises(KineposeError, match="one subject label per frame"):
        make_split("subject", 50)


def test_group_kfold_covers_every_frame_once_and_never_splits_a_group():
    from kinepose.data.splits import group_kfold

    groups = np.repeat(np.arange(12), 5)
    folds = group_kfold(groups, k=4, seed=1)
    tests = np.concatenate([f["test"] for f in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(60))
    for f in folds:
        assert not set(groups[f["train"]]) & set(groups[f["test"]])
        assert len(set(groups[f["test"]])) == 3
    assert [f["test"].tolist() for f in group_kfold(groups, 4, 1)] == [f["test"].tolist() for f in folds]
    with pytest.raises(ValueError, match="k"):
        group_kfold(groups, k=13)
