"""Golden-image comparison with a tolerance, like Pillow's own ``assert_image_similar``.

A golden file is the reviewed rendering of a fixture item. Fonts rasterise a
little differently across FreeType versions, so images are compared by the
mean absolute difference per channel (0-255), not byte for byte; a layout
change (a block moved, a text re-wrapped) moves that far above the tolerance.

On failure the actual image, the expected one and an amplified difference are
written to ``tests/signage/failures/`` (ignored by git) and their paths are in
the assertion message. ``VITRINE_UPDATE_GOLDEN=1`` rewrites the golden files
instead: review the diff of the PNGs before committing them.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageChops, ImageStat

GOLDEN = Path(__file__).parent / "golden"
FAILURES = Path(__file__).parent / "failures"


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    return sum(ImageStat.Stat(diff).mean) / 3


def assert_matches_golden(actual: Image.Image, name: str, epsilon: float = 1.0) -> None:
    path = GOLDEN / f"{name}.png"
    if os.environ.get("VITRINE_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        actual.save(path, optimize=True)
        return
    assert path.exists(), f"no golden image {path}; run with VITRINE_UPDATE_GOLDEN=1 and review"
    expected = Image.open(path)
    expected.load()
    problem = None
    if expected.size != actual.size:
        problem = f"size {actual.size} != golden {expected.size}"
    else:
        score = mean_abs_diff(actual, expected)
        if score > epsilon:
            problem = f"mean abs diff {score:.3f} > {epsilon}"
    if problem is None:
        return
    FAILURES.mkdir(exist_ok=True)
    actual_path = FAILURES / f"{name}.actual.png"
    expected_path = FAILURES / f"{name}.expected.png"
    diff_path = FAILURES / f"{name}.diff.png"
    actual.save(actual_path)
    expected.save(expected_path)
    if expected.size == actual.size:
        diff = ImageChops.difference(actual.convert("RGB"), expected.convert("RGB"))
        diff.point(lambda v: min(255, v * 8)).save(diff_path)
    raise AssertionError(f"{name}: {problem}; see {actual_path}, {expected_path}, {diff_path}")
