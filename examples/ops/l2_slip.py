"""The l2 regulariser with a slip in its VJP: d(sum w^2)/dw written as g * w, the 2 forgotten.

Load it over the built-in with `--import` (it replaces `l2`, explicitly, and every report says so):

    python -m graphspec check specs/mlp/mlp.json --taylor --import examples/ops/l2_slip.py
"""

import numpy as np

import graphspec
from graphspec.ops import OPS

l2 = OPS["l2"]
graphspec.defop("l2", l2.forward, vjp=(lambda g, ans, w: g * w,),  # the slip: 2 * g * w is right
                jvp=(lambda t, ans, w: 2 * np.sum(w * t),), shape=l2.shape, args=l2.args, doc=l2.doc,
                replace=True)
