import pytest
import torch

from sdnb.errors import SdnbError
from sdnb.seeds import MAX_SEED, initial_noise, resolve_seed, slerp


def test_slerp_endpoints_are_exact_and_norm_is_kept() -> None:
    a, b = initial_noise([1, 2], (4, 32, 32))
    assert torch.equal(slerp(a, b, 0.0), a)
    assert torch.equal(slerp(a, b, 1.0), b)
    for t in (0.25, 0.5, 0.75):
        mid = slerp(a, b, t)
        assert abs(mid.norm() / a.norm() - 1) < 0.02  # a straight mix sags to ~0.71 at t=0.5
    assert torch.lerp(a, b, 0.5).norm() / a.norm() < 0.75


def test_slerp_rejects_mismatched_shapes_and_handles_parallel_inputs() -> None:
    a = torch.randn(4, 8, 8)
    with pytest.raises(SdnbError, match="shapes"):
        slerp(a, torch.randn(4, 8, 9), 0.5)
    assert torch.allclose(slerp(a, a * 1.0, 0.3), a)


def test_noise_is_per_seed_and_independent_of_batch() -> None:
    one = initial_noise([7], (4, 8, 8))
    many = initial_noise([5, 7, 9], (4, 8, 8))
    assert torch.equal(one[0], many[1])
    assert not torch.equal(many[0], many[1])


def test_seed_rules() -> None:
    assert resolve_seed(42) == 42
    assert 0 <= resolve_seed(-1) <= MAX_SEED
    for bad in (-2, MAX_SEED + 1, 1.5, True):
        with pytest.raises(SdnbError):
            resolve_seed(bad)
