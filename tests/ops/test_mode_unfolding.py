"""The unfolding operator equals products with the copied unfolding."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from mmseg_hosvd.ops import ModeUnfolding, tucker_core
from mmseg_hosvd.ops import mode_unfolding as unfolding_module


def reference_unfolding(tensor: torch.Tensor, mode: int) -> torch.Tensor:
    """The mode-``mode`` unfolding, copied, in float64 (written here)."""
    order = [mode] + [m for m in range(tensor.ndim) if m != mode]
    return tensor.double().permute(order).reshape(tensor.shape[mode], -1)


def reference_core(tensor: torch.Tensor, factors) -> torch.Tensor:
    """The Tucker core by one einsum, in float64."""
    letters = 'abcdefgh'[:tensor.ndim]
    ranks = 'ABCDEFGH'[:tensor.ndim]
    spec = ','.join([letters] + [f'{i}{r}' for i, r in zip(letters, ranks,
                                                           strict=True)])
    return torch.einsum(f'{spec}->{ranks}', tensor.double(),
                        *[f.double() for f in factors])


@st.composite
def tensors(draw):
    shape = draw(st.lists(st.integers(1, 6), min_size=1, max_size=4))
    dtype = draw(st.sampled_from([torch.float32, torch.float64,
                                  torch.bfloat16]))
    seed = draw(st.integers(0, 2**16))
    tensor = torch.randn(shape, generator=torch.Generator().manual_seed(
        seed)).to(dtype)
    if draw(st.booleans()) and tensor.ndim > 1:
        # a non-contiguous view, as a transposed activation would be
        tensor = tensor.transpose(0, -1)
    return tensor, draw(st.integers(0, tensor.ndim - 1))


def tolerance(dtype):
    # bfloat16 input is cast exactly to float32; float32 sums in any order
    return dict(rtol=1e-5, atol=1e-4) if dtype != torch.float64 else {}


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Chunks of a few elements, so that every path of the operator runs
    (views, gathered blocks, column slices, cast slices) on small tensors."""
    monkeypatch.setattr(unfolding_module, 'CHUNK_BYTES', 48)
    monkeypatch.setattr(unfolding_module, 'MIN_CHUNK_BYTES', 16)
    monkeypatch.setattr(unfolding_module, 'GRAM_COLUMNS', 4)


@settings(max_examples=150, deadline=None)
@given(case=tensors(), chunked=st.booleans())
def test_products_equal_the_copied_unfoldings(case, chunked):
    tensor, mode = case
    with pytest.MonkeyPatch.context() as patch:
        if chunked:
            patch.setattr(unfolding_module, 'CHUNK_BYTES', 48)
            patch.setattr(unfolding_module, 'MIN_CHUNK_BYTES', 16)
            # column slices and batched products of one or a few blocks
            patch.setattr(unfolding_module, 'GRAM_COLUMNS', 4)
        operator = ModeUnfolding(tensor, mode)
        reference = reference_unfolding(tensor, mode)
        assert operator.shape == tuple(reference.shape)
        expected_dtype = (torch.float64 if tensor.dtype == torch.float64
                          else torch.float32)
        gram = operator.gram()
        assert gram.dtype == expected_dtype
        assert_close(gram.double(), reference @ reference.t(),
                     **tolerance(tensor.dtype))
        block = torch.randn(reference.shape[0], 3, dtype=expected_dtype)
        assert_close(operator.gram_times(block).double(),
                     reference @ (reference.t() @ block.double()),
                     **tolerance(tensor.dtype))
        projected = block.double().t() @ reference
        assert_close(operator.projected_gram(block).double(),
                     projected @ projected.t(), **tolerance(tensor.dtype))
        kept = torch.full((3, reference.shape[1]), float('nan'),
                          dtype=expected_dtype)
        operator.projected_gram(block, kept)
        assert_close(kept.double(), projected, **tolerance(tensor.dtype))
        assert operator.energy() == pytest.approx(
            float((reference**2).sum()), rel=1e-5)


@settings(max_examples=100, deadline=None)
@given(case=tensors(), chunked=st.booleans(), data=st.data())
def test_tucker_core_equals_the_einsum(case, chunked, data):
    tensor, _ = case
    dtype = (torch.float64 if tensor.dtype == torch.float64
             else torch.float32)
    factors = [
        torch.randn(size, data.draw(st.integers(1, size)), dtype=dtype)
        for size in tensor.shape
    ]
    with pytest.MonkeyPatch.context() as patch:
        if chunked:
            patch.setattr(unfolding_module, 'CHUNK_BYTES', 48)
            patch.setattr(unfolding_module, 'MIN_CHUNK_BYTES', 16)
        core = tucker_core(tensor, factors)
        mode = data.draw(st.integers(0, tensor.ndim - 1))
        product = (factors[mode].double().t() @ reference_unfolding(
            tensor, mode)).to(dtype)
        given = tucker_core(tensor, factors, projected=(mode, product))
    assert core.dtype == given.dtype == dtype
    assert_close(core.double(), reference_core(tensor, factors),
                 **tolerance(tensor.dtype))
    assert_close(given.double(), reference_core(tensor, factors),
                 **tolerance(tensor.dtype))


def test_a_given_projection_is_not_computed_again(monkeypatch):
    from mmseg_hosvd.ops import tucker as core_module

    def refused(*args):
        raise AssertionError('the tensor was multiplied again')

    tensor = torch.randn(3, 4, 5, dtype=torch.float64)
    factors = [torch.randn(size, 2, dtype=torch.float64) for size in (3, 4, 5)]
    product = factors[1].t() @ reference_unfolding(tensor, 1)
    monkeypatch.setattr(core_module, '_first_product', refused)
    assert_close(tucker_core(tensor, factors, projected=(1, product)),
                 reference_core(tensor, factors))


@pytest.mark.parametrize('shape, columns', [
    ((6, 2, 3), 4),  # batched products of one block each
    ((7, 2, 3), 8),  # of two blocks, the last alone
    ((5, 3, 7), 4),  # column slices of each block
    ((1, 8, 70000), None),  # of one long block, at the real width
])
def test_a_gram_of_views_sums_every_block(shape, columns, monkeypatch):
    if columns is not None:
        monkeypatch.setattr(unfolding_module, 'GRAM_COLUMNS', columns)
    tensor = torch.randn(shape, dtype=torch.float64)
    reference = reference_unfolding(tensor, 1)
    assert_close(ModeUnfolding(tensor, 1).gram(), reference @ reference.t())


def test_large_blocks_are_used_as_views(tiny_chunks):
    tensor = torch.randn(2, 5, 7)
    blocks = list(ModeUnfolding(tensor, 1).blocks())
    assert len(blocks) == 2
    storage = tensor.untyped_storage().data_ptr()
    assert all(b.untyped_storage().data_ptr() == storage for b in blocks)


def test_bad_mode_and_factor_count_are_named():
    with pytest.raises(ValueError, match='mode 3 is out of range'):
        ModeUnfolding(torch.zeros(2, 3, 4), 3)
    with pytest.raises(ValueError, match=r'one factor per mode \(3\), got 2'):
        tucker_core(torch.zeros(2, 3, 4), [torch.eye(2), torch.eye(3)])
    with pytest.raises(ValueError,
                       match=r'projection of mode 1 must have shape '
                       r'\(3, 8\), got \(3, 7\)'):
        tucker_core(torch.zeros(2, 3, 4), [torch.eye(s) for s in (2, 3, 4)],
                    projected=(1, torch.zeros(3, 7)))
