"""Restricted unpickling of model and dataset files (pure Python + numpy + scipy, no ROS).

A pickle can name any importable global and call it, so loading one means running its code.
The unpickler here resolves only exact ``(module, name)`` pairs of an allowlist to objects
held in this module: nothing is imported, and a name is matched together with its full module
path (``numpy.save`` or ``scipy.sparse.save_npz`` never match, whatever the name). Every other
global raises :class:`RefusedGlobalError`, which names the global and the file.

Allowlists (module-path aliases are the paths that pickles written by Python 2 / 3 with the
numpy and scipy versions of the files' era actually name; none of the objects can touch files,
import modules or run code given in the pickle):

* :data:`NUMPY_GLOBALS`: ``ndarray`` / ``dtype`` and numpy's own array and scalar rebuilders
  (``numpy.core.multiarray`` before numpy 2, ``numpy._core.multiarray`` since).
* :data:`CONTAINER_GLOBALS`: builtin containers and plain values that pickles of protocol
  0-2 name (Python 2 ``__builtin__``, Python 3 ``builtins``), ``collections.OrderedDict``, and
  ``_codecs.encode``, which Python 3 uses to pickle ``bytes`` at protocol 2.
* :data:`OBJECT_GLOBALS`: copyreg's rebuilders of plain class instances (Python 2
  ``copy_reg``) and ``object``; they only call ``__new__`` / ``__init__`` of allowed classes.
* :data:`SPARSE_GLOBALS`: ``csc_matrix`` / ``csr_matrix`` under their modules before scipy
  1.8 (``scipy.sparse.csc``) and since (``scipy.sparse._csc``). Functions of ``scipy.sparse``
  (``save_npz``, ``load_npz``, ``test``...) and other classes are refused.

:func:`load_npy` / :func:`load_npz` read ``.npy`` / ``.npz`` arrays without numpy's
``allow_pickle=True``: plain arrays through ``numpy.lib.format.read_array`` with
``allow_pickle=False``, object arrays (stored as a pickle of the array after the ``.npy``
header) through the restricted unpickler.
"""

from __future__ import annotations

import _codecs
import collections
import copyreg
import pickle
import zipfile
from typing import Callable, Iterable, Mapping

import numpy as np
import numpy.lib.format as npy_format
import scipy.sparse as sp

try:  # numpy >= 2 (numpy 1.26 has the same names); ``numpy.core`` warns on access in numpy 2
    from numpy._core import multiarray as _multiarray, numeric as _numeric
except ImportError:  # pragma: no cover - numpy < 1.26
    from numpy.core import multiarray as _multiarray, numeric as _numeric


def _aliases(modules: Iterable[str], objects: Mapping[str, object]) -> dict[tuple[str, str], object]:
    return {(module, name): obj for module in modules for name, obj in objects.items()}


#: numpy array / dtype / scalar reconstruction.
NUMPY_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **_aliases(("numpy.core.multiarray", "numpy._core.multiarray"),
               {"_reconstruct": _multiarray._reconstruct, "scalar": _multiarray.scalar}),
    **_aliases(("numpy.core.numeric", "numpy._core.numeric"), {"_frombuffer": _numeric._frombuffer}),
}
#: Builtin containers and values (protocol 0-2 pickles name them), bytes at protocol 2.
CONTAINER_GLOBALS = {
    **_aliases(("builtins", "__builtin__"), {
        t.__name__: t for t in (list, dict, tuple, set, frozenset, bytes, bytearray, slice, complex)}),
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): _codecs.encode,
}
#: Instances of plain classes (protocol 0-1 ``_reconstructor``, protocol 2 ``__newobj__``).
OBJECT_GLOBALS = {
    **_aliases(("copyreg", "copy_reg"), {n: getattr(copyreg, n)
                                         for n in ("_reconstructor", "__newobj__", "__newobj_ex__")}),
    **_aliases(("builtins", "__builtin__"), {"object": object}),
}
#: The sparse matrix classes SMPL-family pickles hold (J_regressor, transfer matrices).
SPARSE_GLOBALS = {
    **_aliases(("scipy.sparse.csc", "scipy.sparse._csc"), {"csc_matrix": sp.csc_matrix}),
    **_aliases(("scipy.sparse.csr", "scipy.sparse._csr"), {"csr_matrix": sp.csr_matrix}),
}
#: What numpy object arrays of dicts / lists / strings / arrays (dataset files) name.
DATA_GLOBALS = {**NUMPY_GLOBALS, **CONTAINER_GLOBALS}


class RefusedGlobalError(pickle.UnpicklingError, ValueError):
    """A pickle named a global outside the allowlist (raised on look-up, before any call of it)."""


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the ``(module, name)`` pairs of ``allowed``.

    Args:
        file: binary file positioned at the pickle.
        allowed: ``{(module, name): object}``, e.g. ``DATA_GLOBALS``.
        source: the file, named in errors.
        hint: appended to the refusal message (e.g. how to trust the file).
        **kwargs: passed to ``pickle.Unpickler`` (default ``encoding='latin1'``, which Python 2
            pickles of numpy arrays need).
    """

    def __init__(self, file, allowed: Mapping[tuple[str, str], object], source, hint: str = "",
                 **kwargs):
        kwargs.setdefault("encoding", "latin1")
        super().__init__(file, **kwargs)
        self._allowed, self._source, self._hint = allowed, source, hint

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise RefusedGlobalError(
                f"{self._source}: refusing to load global {module}.{name}{self._hint}") from None


def load_pickle(path, allowed: Mapping[tuple[str, str], object], hint: str = "",
                unpickler: type[RestrictedUnpickler] = RestrictedUnpickler):
    """Unpickle the file ``path`` naming only globals of ``allowed``.

    Raises:
        RefusedGlobalError: the pickle names any other global (message: file, global, hint).
        pickle.UnpicklingError: a malformed pickle.
    """
    with open(path, "rb") as f:
        return unpickler(f, allowed, path, hint).load()


_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}


def _read_array(open_member: Callable, source: str, allowed, hint: str) -> np.ndarray:
    with open_member() as fp:
        reader = _HEADER_READERS.get(npy_format.read_magic(fp))
        if reader is not None and reader(fp)[2].hasobject:  # the rest is a pickle of the array
            array = RestrictedUnpickler(fp, allowed, source, hint).load()
            if not isinstance(array, np.ndarray):
                raise ValueError(f"{source}: object array payload is a {type(array).__name__}")
            return array
    with open_member() as fp:
        return npy_format.read_array(fp, allow_pickle=False)


def load_npy(path, allowed: Mapping[tuple[str, str], object] = DATA_GLOBALS, hint: str = "") -> np.ndarray:
    """Read a ``.npy`` array; an object array is unpickled naming only globals of ``allowed``.

    Raises:
        RefusedGlobalError: an object array naming another global.
        ValueError: not a ``.npy`` file (or an unreadable header).
    """
    return _read_array(lambda: open(path, "rb"), str(path), allowed, hint)


def load_npz(path, keys: Iterable[str] | None = None,
             allowed: Mapping[tuple[str, str], object] = DATA_GLOBALS, hint: str = ""
             ) -> dict[str, np.ndarray]:
    """Read the arrays ``keys`` (all when None; absent keys are skipped) of a ``.npz`` file.

    Object arrays are unpickled naming only globals of ``allowed``; other members are not read.

    Returns:
        {key: array}, in the order of the file.

    Raises:
        RefusedGlobalError: a read object array naming another global.
        ValueError / zipfile.BadZipFile: not an ``.npz`` file.
    """
    wanted = None if keys is None else set(keys)
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.namelist() if m.endswith(".npy")]
        return {m[:-4]: _read_array(lambda m=m: archive.open(m), f"{path}:{m[:-4]}", allowed, hint)
                for m in members if wanted is None or m[:-4] in wanted}
