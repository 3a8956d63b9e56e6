"""Loading numpy arrays from pickles without running the pickle's code.

A pickle is a program: ``pickle.load`` calls whatever global it names. `load_array` resolves
only the few numpy globals that rebuild a plain array and refuses any other with
`UnsafePickleError`, so a tampered data file cannot run code.
"""

from __future__ import annotations

import io
import pickle
from typing import IO, Any

import numpy as np

try:  # numpy >= 2 moved the array-rebuilding helpers; old pickles still name numpy.core
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]

# (module, name) a pickle may ask for -> the object it gets. Both spellings of the module map to
# the installed numpy's own functions, so no deprecated alias is imported.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle that asks for something other than numpy array reconstruction."""


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` only hands out `ALLOWED_GLOBALS`."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {module}.{name} from a pickle: only numpy arrays are allowed; "
                "the file is not a plain array pickle (corrupt or tampered) - get a clean copy"
            ) from None


def load_array(file: IO[bytes] | bytes, *, name: str = "<pickle>") -> np.ndarray:
    """Unpickle a plain numeric numpy array, refusing anything that would run code.

    Args:
        file: an open binary file (e.g. from ``gzip.open``) or the pickle's bytes.
        name: shown in error messages.
    """
    stream = io.BytesIO(file) if isinstance(file, (bytes, bytearray)) else file
    try:
        obj = NumpyOnlyUnpickler(stream).load()
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{name}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        raise pickle.UnpicklingError(f"{name}: not a readable array pickle ({e}); get a clean copy") from e
    if not isinstance(obj, np.ndarray):
        raise UnsafePickleError(f"{name}: holds a {type(obj).__name__}, expected a numpy array")
    if obj.dtype.kind not in "biuf":
        # An object array could hide arbitrary Python objects; data files are numeric.
        raise UnsafePickleError(f"{name}: array of dtype {obj.dtype} refused; expected a numeric array")
    return obj
