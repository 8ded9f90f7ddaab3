"""Input checks shared by every layer function.

Each public function in the package checks its arrays before computing anything, so that a
learner who passes the wrong thing gets a message naming the expected shape, not a NumPy
broadcasting error three calls deeper (or, worse, a silently wrong answer: with square
weights a transposed matrix raises nothing).

The checks run once per public call. A sequence function checks the whole sequence and then
calls its step function with `validate=False`, so the loop over time pays nothing for them.
Besides shapes and dtypes they refuse NaN and infinite values (`check_finite`, one
`np.isfinite` pass per array), and settings such as a learning rate of zero or a negative
number of units (`check_positive`, `check_int`, ...).
"""

from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class NonFiniteError(ValueError, FloatingPointError):
    """A NaN or infinite value where the package needs finite numbers.

    A ValueError, since the input is bad; also a FloatingPointError, the class NumPy raises
    for floating-point trouble, so code that catches either keeps working.
    """


def _describe(spec: tuple, sizes: dict) -> str:
    """Render a shape spec such as ("N", "T", "D") as "(N, T, D) = (?, ?, 5)"."""
    comma = "," if len(spec) == 1 else ""  # (H,) like a Python 1-tuple
    names = ", ".join(str(s) for s in spec) + comma
    known = ", ".join(str(sizes.get(s, "?")) if isinstance(s, str) else str(s) for s in spec) + comma
    if names == known or all(isinstance(s, str) and s not in sizes for s in spec):
        return f"({names})"
    return f"({names}) = ({known})"


def check_float_array(name: str, value) -> np.ndarray:
    """Return `value` as an ndarray, or raise TypeError if it is not float32 or float64.

    Integer arrays are refused rather than converted: an integer weight matrix is almost
    always a mistake (for example token ids passed where one-hot vectors were expected).
    float16 is refused too: with about three significant digits, sums over a sequence and
    gradient checks lose everything, and the course's numbers are stated for float32 and
    float64 only.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        if value.dtype.kind == "f":
            raise TypeError(
                f"{name} must be a floating-point array (float32 or float64), got dtype {value.dtype}, "
                f"which the package does not support; convert with {name}.astype(np.float32)"
            )
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64), got dtype {value.dtype}"
        )
    return value


def check_shape(name: str, value: np.ndarray, spec: tuple, sizes: dict) -> dict:
    """Check `value.shape` against `spec`, binding named dimensions in `sizes`.

    `spec` holds integers (fixed sizes) or strings (named sizes). A name already in `sizes`
    must match; a new name is bound to the size found. Returns the updated `sizes`, so
    several arrays can be checked against one another in turn.

    >>> sizes = check_shape("x", np.zeros((2, 3, 4)), ("N", "T", "D"), {})
    >>> sizes == {"N": 2, "T": 3, "D": 4}
    True
    """
    if value.ndim != len(spec):
        raise ValueError(
            f"{name} must have shape {_describe(spec, sizes)} ({len(spec)} dimension{'s' * (len(spec) != 1)}), "
            f"got shape {value.shape} ({value.ndim} dimension{'s' * (value.ndim != 1)})"
        )
    bound = dict(sizes)
    for dim, (want, got) in enumerate(zip(spec, value.shape)):
        if isinstance(want, str) and got == 0:
            why = {"T": ": a sequence needs at least one time step", "N": ": a batch needs at least one example"}
            raise ValueError(
                f"{name} must have shape {_describe(spec, bound)} with every size at least 1, "
                f"got shape {value.shape} ({want} = 0{why.get(want, '')})"
            )
        if isinstance(want, str):
            if want in bound and bound[want] != got:
                raise ValueError(
                    f"{name} must have shape {_describe(spec, bound)}, got shape {value.shape} "
                    f"(dimension {dim}, {want}, should be {bound[want]})"
                )
            bound[want] = got
        elif want != got:
            raise ValueError(f"{name} must have shape {_describe(spec, bound)}, got shape {value.shape}")
    return bound


def check(name: str, value, spec: tuple, sizes: dict) -> dict:
    """check_float_array followed by check_shape."""
    check_float_array(name, value)
    return check_shape(name, value, spec, sizes)


def check_mask(mask, sizes: dict) -> np.ndarray | None:
    """Validate an optional (N, T) boolean mask; True marks a real (not padded) step."""
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a NumPy array of booleans, got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must have dtype bool (True = real step, False = padding), got {mask.dtype}")
    check_shape("mask", mask, ("N", "T"), sizes)
    return mask


# ------------------------------------------------------------------- finite values
def check_finite(**arrays) -> None:
    """Raise NonFiniteError naming the first array (keyword name) that holds NaN or inf.

    One np.isfinite pass per array; None values are skipped. Call it once per public call,
    after the shape checks, never inside a loop over time steps.
    """
    for name, value in arrays.items():
        if value is None:
            continue
        finite = np.isfinite(value)
        if not finite.all():
            raise NonFiniteError(f"{name} {_non_finite_words(value, finite)}")


def _non_finite_words(value: np.ndarray, finite: np.ndarray) -> str:
    bad = ~finite
    n_nan = int(np.isnan(value[bad]).sum())
    n_inf = int(bad.sum()) - n_nan
    first = tuple(int(i) for i in np.argwhere(bad)[0]) if value.ndim else ()
    kinds = " and ".join(w for w, n in ((f"{n_nan} NaN", n_nan), (f"{n_inf} infinite", n_inf)) if n)
    where = f", the first at index {first}" if value.ndim else ""
    return (f"must hold finite numbers only, got {kinds} value{'s' * (n_nan + n_inf != 1)} "
            f"(shape {value.shape}, dtype {value.dtype}{where})")


def check_gradient(name: str, value, shape: tuple) -> np.ndarray:
    """An upstream gradient: a float array of exactly `shape` (integers), all finite."""
    check_float_array(name, value)
    check_shape(name, value, tuple(shape), {})
    check_finite(**{name: value})
    return value


def check_grads(grads, name: str = "grads", finite: bool = True) -> dict:
    """A dict of float gradient arrays, as the optimizers and clipping functions take them.

    With finite=True (the default) a NaN or inf entry raises NonFiniteError naming its key:
    no optimizer step or rescaling can repair it, and it would spread into every parameter.
    """
    if not isinstance(grads, dict):
        raise TypeError(f"{name} must be a dict of NumPy arrays, {{name: gradient}}, got {type(grads).__name__}")
    for key, g in grads.items():
        check_float_array(f"{name}[{key!r}]", g)
        if finite:
            check_finite(**{f"{name}[{key!r}]": g})
    return grads


# ------------------------------------------------------- the data a recurrent layer reads
def check_data(x_name: str, x, x_spec: tuple, states: dict, kernel, gates: int = 1) -> dict:
    """Check a recurrent layer's data: x, then its states, then that x's width fits kernel.

    x_spec is ("N", "T", "D") for a sequence or ("N", "D") for one step; `states` maps names
    (h0 and c0, or h_prev and c_prev) to (N, H) arrays; kernel should be (D, gates * H).
    Returns the sizes bound so far, for the weight checks that follow. Two mistakes get a
    message that blames the argument most likely wrong, not the one checked second:

    - time-major input, x of shape (T, N, D): the states then disagree with x's first axis
      but agree with its second, so the message says that x looks time-major;
    - x of the wrong input width while kernel's columns fit H: the message blames x, not the
      kernel (a transposed kernel, whose columns do not fit, is still blamed on the kernel).
    """
    sizes = check(x_name, x, x_spec, {})
    for name, state in states.items():
        check_float_array(name, state)
        try:
            sizes = check_shape(name, state, ("N", "H"), sizes)
        except ValueError as err:
            if (len(x_spec) == 3 and state.ndim == 2 and state.shape[0] not in (0, x.shape[0])
                    and state.shape[0] == x.shape[1]):
                N, T, D = x.shape[1], x.shape[0], x.shape[2]
                raise ValueError(
                    f"{x_name} of shape {x.shape} looks time-major (T, N, D) = ({T}, {N}, {D}): its "
                    f"dimension 1 matches the N = {N} rows of {name}; the course uses batch-major "
                    f"(N, T, D), as Keras does, so pass {x_name}.transpose(1, 0, 2). If {x_name} is "
                    f"batch-major, then {err}"
                ) from None
            raise
    # kernel (D, gates * H): if its columns fit H, it is x's width that is off.
    if (isinstance(kernel, np.ndarray) and kernel.ndim == 2 and "H" in sizes and kernel.shape[0] > 0
            and kernel.shape[0] != sizes["D"] and kernel.shape[1] == gates * sizes["H"]):
        want = {**sizes, "D": kernel.shape[0]}
        raise ValueError(
            f"{x_name} must have shape {_describe(x_spec, want)}, got shape {x.shape} (dimension "
            f"{len(x_spec) - 1}, D, should be {kernel.shape[0]}: kernel has shape {kernel.shape}, "
            f"so the layer takes D = {kernel.shape[0]} input features)"
        )
    return sizes


def check_cache(cache, made_by: str, items: int, step_items: int) -> tuple:
    """Check that `cache` is what the forward function `made_by` returned; return it.

    A sequence cache is a tuple of `items` whose first entry is the list of step caches, each
    a tuple of `step_items`. Passing the output array, or another layer's cache, raises a
    TypeError naming the function whose cache was expected.
    """
    ok = isinstance(cache, tuple) and len(cache) == items and isinstance(cache[0], list)
    if ok and cache[0]:
        step = cache[0][0]
        ok = isinstance(step, tuple) and len(step) == step_items
    if not ok:
        got = type(cache).__name__
        if isinstance(cache, np.ndarray):
            got += f" of shape {cache.shape}"
        elif isinstance(cache, tuple) and len(cache) == items and isinstance(cache[0], list):
            step = cache[0][0]
            held = f"{len(step)} items" if isinstance(step, tuple) else type(step).__name__
            got = f"a cache whose steps hold {held}, not {step_items} items (another layer's cache?)"
        elif isinstance(cache, tuple):
            got += f" of {len(cache)} items"
        raise TypeError(f"cache must be the cache that {made_by} returned (a tuple of {items} items), got {got}")
    if not cache[0]:
        raise ValueError(f"cache holds no time steps (T = 0): {made_by} needs a sequence of at least one step")
    return cache


def check_step_cache(cache, made_by: str, items: int) -> tuple:
    """Check that `cache` is the cache of one step, as `made_by` returned it."""
    if not (isinstance(cache, tuple) and len(cache) == items):
        got = type(cache).__name__ + (f" of {len(cache)} items" if isinstance(cache, tuple) else "")
        raise TypeError(f"cache must be the cache that {made_by} returned (a tuple of {items} items), got {got}")
    return cache


# ------------------------------------------------------------------------- settings
def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_positive(name: str, value, allow_zero: bool = False) -> float:
    """A finite real number > 0 (a learning rate, a clipping threshold, a temperature, ...).

    allow_zero=True accepts 0 as well.
    """
    words = "non-negative" if allow_zero else "positive"
    if not _is_real(value):
        raise TypeError(f"{name} must be a {words} number, got {type(value).__name__} {value!r}")
    if not (np.isfinite(value) and (value > 0 or allow_zero and value == 0)):
        raise ValueError(f"{name} must be {words}, got {value}")
    return value


def check_int(name: str, value, minimum: int = 1) -> int:
    """A Python or NumPy integer (not a bool, not a float) that is at least `minimum`."""
    if not isinstance(value, numbers.Integral) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_fraction(name: str, value, low: float = 0.0, high: float = 1.0) -> float:
    """A real number in [low, high), such as a momentum or one of Adam's betas."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a number in [{low}, {high}), got {type(value).__name__} {value!r}")
    if not low <= value < high:
        raise ValueError(f"{name} must lie in [{low}, {high}), got {value}")
    return value


def check_generator(name: str, rng) -> np.random.Generator:
    """A NumPy random Generator, as np.random.default_rng(seed) makes."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name} must be a NumPy random Generator, for example np.random.default_rng(0), "
            f"got {type(rng).__name__} {rng!r}"
        )
    return rng


def check_float_dtype(name: str, dtype) -> np.dtype:
    """float32 or float64 (given as a type, a dtype or its name)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be np.float32 or np.float64, got {repr(dtype) if dt is None else dt.name}")
    return dt
