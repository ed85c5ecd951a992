"""What a gradient check reports: the verdicts, the tolerances, and the dataclasses of a `Report`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PASS, FAIL, KINK, UNCLEAR = "PASS", "FAIL", "KINK", "UNCLEAR"
EMPTY = "EMPTY"  # nothing was checked: not a pass
FD_DTYPE = "float64"


@dataclass(frozen=True)
class Tolerance:
    """Step and tolerances for one analytic dtype (finite differences are always float64).

    h_j = eps * max(1, |x_j|); element j passes when |a - n| <= max(rtol * max(|a|, |n|), atol_j), with
    atol_j = atol * max(1, |f(x)|) / max(1, |x_j|), the size of the finite-difference rounding error."""

    eps: float
    rtol: float
    atol: float


# eps = cbrt(float64 machine eps) balances truncation (h^2) and rounding (eps_mach / h) error.
TOLERANCES = {"float64": Tolerance(eps=6e-6, rtol=1e-5, atol=1e-8),
              "float32": Tolerance(eps=6e-6, rtol=1e-4, atol=1e-5)}


@dataclass(frozen=True)
class NodeKink:
    node: str
    op: str
    at: tuple[int, ...]  # the element of the node's branch array that switched


@dataclass(frozen=True)
class Census:
    """How many of a check's compared numbers (elements, Jacobian entries or directions) are within
    tolerance, over it, or at a kink."""

    compared: int
    within: int  # PASS
    over: int  # FAIL
    kinks: int  # KINK
    unit: str  # elements | entries (a Jacobian's or a projection's rows x elements) | directions

    @property
    def share_over(self) -> float:
        return self.over / self.compared if self.compared else 0.0


@dataclass(frozen=True)
class Diagnosis:
    """A pattern that holds at every failing number of a check (graphspec/checker/diagnose.py)."""

    pattern: str  # factor | sign | mean | sum | zeros | transpose | one_row | fan_out
    message: str
    factor: float | None = None  # analytic = factor x numeric (factor, sign, mean, sum)
    holds_at: int = 0  # how many compared numbers the pattern was checked at (all failing ones included)


@dataclass(frozen=True)
class Element:
    index: tuple[int, ...]  # element of the input (or the direction number in fast mode)
    row: str  # which output element or projection ("" for the loss)
    analytic: float
    numeric: float
    abs_err: float
    rel_err: float
    status: str
    kinks: tuple[NodeKink, ...] = ()


@dataclass
class InputCheck:
    """One input (param or float input) against one target (the loss, or one output)."""

    input: str
    kind: str  # param | input
    target: str  # the loss node or the output node
    target_kind: str  # loss | jacobian | projection
    method: str  # elements | directions
    shape: tuple[int, ...]
    size: int
    checked: int
    max_abs_err: float
    max_rel_err: float
    status: str
    worst: Element | None
    worst_elements: list[Element]
    kinks: list[Element]
    arrays: dict[str, Any]  # every checked element: index, row, analytic, numeric, abs_err, rel_err, status
    notes: list[str] = field(default_factory=list)
    census: Census | None = None
    diagnosis: Diagnosis | None = None  # only on a FAIL, only where the pattern is clear


@dataclass(frozen=True)
class NodeCheck:
    """A node's own VJP or JVP for one arg against finite differences of the node alone."""

    node: str
    op: str
    arg: int
    arg_name: str
    mode: str  # vjp | jvp
    analytic: float
    numeric: float
    rel_err: float
    status: str
    message: str = ""  # what the rule raised, when it raised
    diagnosis: Diagnosis | None = None  # a failing VJP's pattern, from its full cotangent (diagnose.node_diagnosis)


@dataclass(frozen=True)
class ModeCheck:
    """<u, jvp(v)> against <vjp(u), v> for one output."""

    target: str
    jvp_side: float
    vjp_side: float
    rel_err: float
    status: str


@dataclass(frozen=True)
class TaylorRow:
    wrt: str  # "all" or an input's name
    h: list[float]
    remainder: list[float | None]
    used: list[bool]  # steps that crossed no kink and stayed above rounding noise
    order: float | None
    status: str
    note: str = ""


@dataclass
class Report:
    spec: str | None
    name: str | None
    dtype: str
    fd_dtype: str
    mode: str  # full | fast
    strict: bool
    tolerance: Tolerance
    checks: list[InputCheck]
    modes: list[ModeCheck]
    nodes: list[NodeCheck]
    taylor: list[TaylorRow]
    notes: list[str]
    seconds: float = 0.0
    evaluations: int = 0  # perturbed forward rows evaluated
    error: str = ""  # the check could not be made (a VJP or JVP raised, a non-finite value at the point)
    empty: str = ""  # why nothing was checked ("nothing to check: ..."): the verdict is EMPTY, not PASS
    warnings: list[str] = field(default_factory=list)  # findings that do not fail the check (an unused param)
    sample: dict[str, Any] | None = None  # with a time budget: {budget_s, seed, elements, of, coverage}

    @property
    def status(self) -> str:
        states = [c.status for c in self.checks] + [m.status for m in self.modes] + \
            [n.status for n in self.nodes] + [t.status for t in self.taylor]
        if FAIL in states or self.error:
            return FAIL
        if self.empty:
            return EMPTY
        return KINK if KINK in states else PASS

    @property
    def ok(self) -> bool:
        return self.status == PASS or (self.status == KINK and not self.strict)

    @property
    def verdict(self) -> str:
        """The word every format states, the one the exit code follows: PASS and KINK (kinks allowed) are
        ok; FAIL (a kink too, with strict) and EMPTY (nothing checked) are not."""
        return FAIL if self.status == KINK and self.strict else self.status

    @property
    def blamed(self) -> list[NodeCheck]:
        return [n for n in self.nodes if n.status == FAIL]

    def node_states(self, fold: Callable[[str], str] | None = None) -> dict[str, str]:
        """What the check says of each node it has a word on, the worst found: an input by its
        gradient's check (PASS, FAIL, KINK), a node by the kinks found at it (KINK) and by its own
        VJP/JVP check (PASS, or BLAMED when that failed); UNCLEAR says nothing. ``fold`` names a node
        as a picture shows it (a function's body node as its call). draw --check and the HTML page
        colour by these."""
        rank = {PASS: 0, KINK: 1, FAIL: 2, "BLAMED": 3}
        out: dict[str, str] = {}

        def put(name: str, state: str) -> None:
            name = fold(name) if fold is not None else name
            if state in rank and rank[state] >= rank.get(out.get(name, ""), -1):
                out[name] = state

        for c in self.checks:
            put(c.input, c.status)
            for el in [*c.kinks, *c.worst_elements]:
                for k in el.kinks:
                    put(k.node, KINK)
        for n in self.nodes:
            put(n.node, "BLAMED" if n.status == FAIL else n.status)
        return out

    def to_json(self) -> dict[str, Any]:
        from .. import report

        return report.report_json(self)

    def text(self, width: int = 120, verbose: bool = False) -> str:
        from .. import report

        return report.report_text(self, width=width, verbose=verbose)

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:  # Jupyter shows the report as tables
        from ..html import report_fragment

        return report_fragment(self)
