"""Sparse operators assembled with scipy and applied with torch (private helper)."""

from __future__ import annotations

import warnings

import numpy as np
import torch


def torch_csr(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    shape: tuple[int, int],
    *,
    dtype: torch.dtype,
    device: torch.device | str,
) -> torch.Tensor:
    """Return a torch sparse CSR tensor from scipy-style CSR arrays.

    Parameters
    ----------
    indptr, indices, data : numpy.ndarray
        CSR arrays with sorted, unique column indices per row (scipy's ``tocsr()`` after
        ``sort_indices()``); the two index arrays are brought to one integer dtype.
    shape : tuple of int
        ``(rows, columns)``.
    dtype, device
        Of the returned tensor's values and storage.
    """
    # scipy keeps int32 indices while they fit; torch needs both index arrays alike.
    index_dtype = np.result_type(indptr.dtype, indices.dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(indptr.astype(index_dtype, copy=False)),
            torch.from_numpy(indices.astype(index_dtype, copy=False)),
            torch.from_numpy(data).to(dtype),
            size=shape,
            check_invariants=False,
        ).to(device)
