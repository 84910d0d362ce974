"""Helpers shared by the zoo family files (torch-free)."""

from __future__ import annotations


def square_side(name: str, img_size, minimum: int = 1, multiple_of: int = 1) -> int:
    """Return the side of a square input given as an int or an (H, W) pair with H == W.

    Raises ValueError naming the model when the size is too small or not a multiple.
    """
    if isinstance(img_size, (tuple, list)):
        if len(img_size) != 2 or int(img_size[0]) != int(img_size[1]):
            raise ValueError(f"{name} supports square inputs only, got img_size={tuple(img_size)}")
        img_size = img_size[0]
    side = int(img_size)
    if side < minimum:
        raise ValueError(f"{name} needs img_size >= {minimum}, got {side}")
    if side % multiple_of:
        raise ValueError(f"{name} needs img_size divisible by {multiple_of}, got {side}")
    return side
