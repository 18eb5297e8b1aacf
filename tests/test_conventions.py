import pytest

from faket.conventions import centre_index, centred_crop_start


@pytest.mark.parametrize(
    ("n", "m", "start"),
    [(10, 10, 0), (10, 4, 3), (11, 4, 3), (11, 5, 3), (10, 5, 3), (363, 256, 53), (7, 1, 3)],
)
def test_centred_crop_keeps_the_centre_pixel(n, m, start):
    assert centred_crop_start(n, m) == start
    # The centre pixel of the long axis becomes the centre pixel of the crop.
    assert centre_index(n) - start == centre_index(m)


@pytest.mark.parametrize(("n", "m"), [(4, 5), (4, 0)])
def test_impossible_crops_are_refused(n, m):
    with pytest.raises(ValueError, match=f"cannot crop {m} pixels"):
        centred_crop_start(n, m)
