"""Show the package's own source in a notebook, so a chapter explains the code it then uses."""

from __future__ import annotations

import inspect


def source(obj):
    """The source of a function or class, syntax-highlighted in Jupyter and in the book."""
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")
