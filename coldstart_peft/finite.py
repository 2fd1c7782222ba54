"""Find non-finite tensors before they are saved or trained on."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def non_finite(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity, in order.

    Example:
        >>> non_finite({"w": torch.tensor([1.0, float("nan")]), "ids": torch.tensor([3])})
        ['w']
    """
    return [
        name for name, tensor in tensors.items()
        if tensor.is_floating_point() and tensor.device.type != "meta" and not bool(torch.isfinite(tensor).all())
    ]  # fmt: skip
