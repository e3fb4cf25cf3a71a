"""What one sandboxed solution run must do (its stages and evaluations) and how it ended."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

STUDENT = "student"
REFERENCE = "reference"


@dataclass(frozen=True)
class Stage:
    """One collection's code steps inside a run: entry point, setUpCode, tearDownCode."""

    entry_point: str | None
    set_up_code: tuple[str, ...]
    tear_down_code: tuple[str, ...]
    input_answers: tuple[str, ...]
    timeout: float
    graphics: tuple[str, ...] | None = None
    store_figures: bool = False

    @property
    def has_code(self) -> bool:
        """Tell whether the stage runs any code."""
        return bool(self.entry_point or self.set_up_code or self.tear_down_code)


@dataclass(frozen=True)
class RunRequest:
    """A whole (collection, side) run: replayed stages, then the collection's own, then lookups."""

    side: str
    collection_index: int
    stages: tuple[Stage, ...]
    namespace_file: str | None
    capture_stdout: bool
    values: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()
    evals: tuple[str, ...] = ()
    preload: tuple[str, ...] = ()

    @property
    def stage(self) -> Stage:
        """Return the collection's own stage (the last one)."""
        return self.stages[-1]

    def fingerprint(self) -> str:
        """Return a stable hash of everything that decides this run's outcome (for caching)."""
        data = asdict(self)
        del data["side"], data["collection_index"]
        return _digest(data)

    def run_key(self) -> str:
        """Return a hash of the code this run executes, whatever it looks up afterwards."""
        return _digest([asdict(stage) for stage in self.stages] + [self.namespace_file,
                                                                   list(self.preload)])

    def covers(self, other: RunRequest) -> bool:
        """Tell whether this run's outcome answers everything the other run would look up."""
        return (self.run_key() == other.run_key()
                and set(other.values) <= set(self.values) and set(other.texts) <= set(self.texts)
                and set(other.evals) <= set(self.evals)
                and (self.capture_stdout or not other.capture_stdout))

    def merged(self, other: RunRequest) -> RunRequest:
        """Return one run that executes the same code and looks up what both want."""
        return replace(self, capture_stdout=self.capture_stdout or other.capture_stdout,
                       values=_union(self.values, other.values),
                       texts=_union(self.texts, other.texts),
                       evals=_union(self.evals, other.evals))


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*first, *second)))


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


@dataclass
class RunOutcome:
    """How a solution run ended: status and message as §3.2 words them, and what it produced.

    `exited_at` is where in the solution's files its entry point ended with sys.exit(0) or
    sys.exit(None) (§9: a normal completion), if it did: file, lineno and line.
    `ended_by_lookups` tells that the run ended in a way the evaluation of the tests' names may
    have caused rather than its stages (stopped or killed before it handed back its outcome, an
    outcome over the size limit, printing past the stop while the names were evaluated): a run
    that evaluated several collections' names then failed on one of them, maybe.
    `withheld_by_stages` is the testFile withheld from a student's run (one its code does not
    name) that its setUpCode or tearDownCode failed to find, if one; `withheld_by_lookups` the
    same for the evaluation of each test's name that failed so, by the name.
    """

    status: str
    message: str = ""
    traceback: dict[str, Any] = field(default_factory=dict)
    entry_seconds: float = 0.0
    exited_at: dict[str, Any] | None = None
    stdout: str | None = None
    stdout_truncated: bool = False
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    texts: dict[str, dict[str, Any]] = field(default_factory=dict)
    evals: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: list[tuple[int, bytes]] = field(default_factory=list)
    ran: bool = False
    ended_by_lookups: bool = False
    withheld_by_stages: str | None = None
    withheld_by_lookups: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the outcome as JSON-able data (for the reference cache)."""
        data = asdict(self)
        data["figures"] = [[number, base64.b64encode(png).decode("ascii")]
                           for number, png in self.figures]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunOutcome:
        """Rebuild an outcome stored with to_json."""
        figures = [(number, base64.b64decode(png)) for number, png in data.pop("figures")]
        return cls(figures=figures, **data)
