"""Faults that the emulator admin API arms on the Auxia API's methods."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Final

from google.protobuf.message import Message
from google.rpc import code_pb2

from auxia.decision.emulator.v1 import emulator_pb2
from auxia_decision._errors import ApiError, Code, FieldViolation, violation
from auxia_decision._routes import services
from auxia_decision.server._emulator.evolution import evolved_json
from auxia_decision.server._emulator.shared_state import FAULTS, SharedState
from auxia_decision.server._transport.bindings import JsonAnswer

ANY_METHOD: Final = "*"
MAX_DELAY_MICROS: Final = 60_000_000


@dataclass(slots=True)
class ArmedFault:
    """A fault as the servicer applies it."""

    name: str
    method: str
    """The short name of the method it selects, or ``*``."""
    remaining: int | None
    """How many more calls it selects; None: it selects a fraction of them."""
    fraction: float
    random_seed: int | None
    """The seed of a fraction's draws (``drawn``); None: it selects a count of calls."""
    code: Code | None
    """The code a selected call fails with; None: it is only delayed."""
    http_status: int | None
    message: str
    delay_seconds: float
    evolve: bool = False
    """Whether a selected call that succeeds is answered as a newer API could answer it."""
    selected: int = 0
    definition: emulator_pb2.Fault = field(default_factory=emulator_pb2.Fault)
    draws: int = 0
    """How many random draws it has taken (a fraction's): the next is ``drawn(seed, draws + 1)``."""

    def error(self) -> ApiError | None:
        """Return the error a selected call fails with, or None when it is only delayed."""
        if self.code is None:
            return None
        return ApiError(self.code, self.message, http_status=self.http_status)

    def answer(self, response: Message) -> Message | bytes:
        """Return what a selected call that ran answers: its response, or it evolved (JSON)."""
        return JsonAnswer(evolved_json(response), response) if self.evolve else response

    def as_message(self) -> emulator_pb2.Fault:
        """Return the fault as the admin API shows it."""
        shown = emulator_pb2.Fault()
        shown.CopyFrom(self.definition)
        shown.name = self.name
        shown.remaining_count = self.remaining or 0
        shown.selected_count = self.selected
        return shown


class FaultPlan:
    """The armed faults, in the order they apply.

    ``armed`` is false when there are none, so that a call checks one
    attribute. ``select`` is called once per authorized, valid call.

    With a ``SharedState`` (``share``), the plan is kept there for every
    process on the store: arming, selecting and clearing change it
    atomically (``arm_shared``, ``select_shared``, ``clear_shared``), and
    this plan follows the shared one.

    Args:
        methods: the short names of the methods that faults may select; by
            default every method of the Auxia API's services.

    """

    def __init__(self, methods: Collection[str] | None = None) -> None:
        if methods is None:
            methods = [method.name for service in services() for method in service.methods]
        self._methods = frozenset(methods)
        self._faults: list[ArmedFault] = []
        self._created = 0
        self.armed = False
        self._shared: SharedState | None = None

    # Kept in a shared state.

    def share(self, shared: SharedState) -> None:
        """Keep the plan in ``shared`` from now on, and follow it there."""
        self._shared = shared
        value = shared.state().get(FAULTS)
        if value is not None:
            self.load(value)
        shared.watch_state(self._follow)

    def _follow(self, state: dict[str, bytes]) -> None:
        value = state.get(FAULTS)
        if value is None:
            self.reset()
        else:
            self.load(value)

    def encode(self) -> bytes:
        """Return the plan as bytes (``load`` takes them): faults, counts, draws taken."""
        return json.dumps(
            {
                "created": self._created,
                "faults": [
                    {
                        "name": fault.name,
                        "method": fault.method,
                        "definition": base64.b64encode(
                            fault.definition.SerializeToString()
                        ).decode(),
                        "remaining": fault.remaining,
                        "selected": fault.selected,
                        "draws": fault.draws,
                    }
                    for fault in self._faults
                ],
            }
        ).encode()

    def load(self, value: bytes) -> None:
        """Become the plan ``encode`` gave."""
        found = json.loads(value)
        faults = []
        for entry in found["faults"]:
            definition = emulator_pb2.Fault.FromString(base64.b64decode(entry["definition"]))
            fault = _armed(definition, entry["name"], entry["method"])
            fault.remaining = entry["remaining"]
            fault.selected = entry["selected"]
            fault.draws = entry["draws"]
            faults.append(fault)
        self._faults = faults
        self._created = int(found["created"])
        self.armed = bool(faults)

    def _copy(self, value: bytes | None) -> FaultPlan:
        plan = FaultPlan(self._methods)
        if value is not None:
            plan.load(value)
        return plan

    async def arm_shared(
        self, fault: emulator_pb2.Fault, full_names: dict[str, str]
    ) -> emulator_pb2.Fault:
        """Arm a fault in the shared plan (as ``arm``); return it as the admin API shows it."""
        assert self._shared is not None

        def change(value: bytes | None) -> tuple[bytes, emulator_pb2.Fault]:
            plan = self._copy(value)
            armed = plan.arm(fault, full_names)
            return plan.encode(), armed.as_message()

        return await self._shared.change_state(FAULTS, change)

    async def select_shared(self, method: str) -> ArmedFault | None:
        """Select in the shared plan (as ``select``): every process counts the same calls."""
        shared = self._shared
        if shared is None:
            return self.select(method)
        if not any(fault.method in (method, ANY_METHOD) for fault in self._faults):
            return None

        def change(value: bytes | None) -> tuple[bytes, ArmedFault | None, bool]:
            plan = self._copy(value)
            armed = len(plan._faults)
            selected = plan.select(method)
            # Counts and draws are read afresh by each selection: every process is told
            # only of a fault used up, which it then stops sending its calls here for.
            return plan.encode(), selected, len(plan._faults) != armed

        return await shared.count_state(FAULTS, change)

    async def current_faults(self) -> list[ArmedFault]:
        """Return the armed faults as ``faults`` does; of the shared plan as committed now."""
        shared = self._shared
        if shared is None:
            return self.faults()
        return self._copy(await shared.current_state(FAULTS)).faults()

    async def clear_shared(self, *, reset: bool = False) -> int:
        """Disarm every fault of the shared plan (numbering from 1 again when ``reset``)."""
        assert self._shared is not None

        def change(value: bytes | None) -> tuple[bytes, int]:
            plan = self._copy(value)
            if reset:
                plan.reset()
                return plan.encode(), 0
            return plan.encode(), plan.clear()

        return await self._shared.change_state(FAULTS, change)

    @property
    def shared(self) -> bool:
        """Whether the plan is kept in a shared state."""
        return self._shared is not None

    def arm(self, fault: emulator_pb2.Fault, full_names: dict[str, str]) -> ArmedFault:
        """Check a fault's definition and arm it; raise INVALID_ARGUMENT naming bad fields.

        ``full_names`` maps the full name of each method to its short name.
        """
        method = full_names.get(fault.method.removeprefix("/").replace("/", "."), fault.method)
        violations = _violations(fault, method, self._methods)
        if violations:
            raise ApiError.invalid_argument(violations)
        self._created += 1
        armed = _armed(fault, f"faults/{self._created}", method)
        self._faults.append(armed)
        self.armed = True
        return armed

    def select(self, method: str) -> ArmedFault | None:
        """Return the fault that applies to a call of ``method`` now, if any; count it."""
        for fault in self._faults:
            if fault.method not in (method, ANY_METHOD):
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                    self.armed = bool(self._faults)
            else:
                fault.draws += 1
                seed = fault.random_seed
                if seed is None or drawn(seed, fault.draws) >= fault.fraction:
                    continue
            fault.selected += 1
            return fault
        return None

    def faults(self) -> list[ArmedFault]:
        """Return the armed faults, in the order they apply."""
        return list(self._faults)

    def clear(self) -> int:
        """Disarm every fault; return how many there were."""
        count = len(self._faults)
        self._faults.clear()
        self.armed = False
        return count

    def reset(self) -> None:
        """Disarm every fault and number the next one 1 again."""
        self.clear()
        self._created = 0


_DRAW: Final = struct.Struct("<qQ")


def drawn(seed: int, index: int) -> float:
    """Return draw ``index`` (from 1) of the random sequence ``seed`` starts: in [0, 1).

    Each draw is computed from the seed and its index alone, so a plan kept in
    a shared store takes its next draw without replaying those before it.
    """
    digest = hashlib.blake2b(_DRAW.pack(seed, index), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def _armed(fault: emulator_pb2.Fault, name: str, method: str) -> ArmedFault:
    """Return a checked fault definition as the servicer applies it."""
    code = Code(fault.code) if fault.code != code_pb2.OK else None
    selection = fault.WhichOneof("selection")
    armed = ArmedFault(
        name=name,
        method=method,
        remaining=fault.count if selection == "count" else None,
        fraction=fault.fraction,
        random_seed=fault.random_seed if selection == "fraction" else None,
        code=code,
        http_status=fault.http_status or None,
        message=fault.message
        or f"{name} failed this call ({code.name if code else 'delay'}): "
        "a fault armed through the emulator admin API",
        delay_seconds=fault.delay.ToMicroseconds() / 1e6,
        evolve=fault.evolve,
    )
    armed.definition.CopyFrom(fault)
    armed.definition.ClearField("remaining_count")
    armed.definition.ClearField("selected_count")
    return armed


def _violations(
    fault: emulator_pb2.Fault, method: str, methods: frozenset[str]
) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    if method != ANY_METHOD and method not in methods:
        violations.append(
            violation(
                "fault.method",
                f'"{fault.method}" is not a method of the Auxia API; '
                f"use one of {', '.join(sorted(methods))}, or * for all",
            )
        )
    selection = fault.WhichOneof("selection")
    if selection == "count" and fault.count < 1:
        violations.append(violation("fault.count", "must be at least 1"))
    if selection == "fraction" and not 0 < fault.fraction <= 1:
        violations.append(violation("fault.fraction", "must be above 0 and at most 1"))
    if fault.code not in code_pb2.Code.values():
        violations.append(violation("fault.code", f"{fault.code} is not a google.rpc.Code"))
    if fault.http_status and not 400 <= fault.http_status <= 599:
        violations.append(violation("fault.httpStatus", "must be an HTTP error status, 400 to 599"))
    if fault.http_status and fault.code == code_pb2.OK:
        violations.append(
            violation("fault.httpStatus", "needs a code: a fault without one only delays")
        )
    delay = fault.delay.ToMicroseconds()
    if not 0 <= delay <= MAX_DELAY_MICROS:
        violations.append(violation("fault.delay", "must be from 0 to 60 seconds"))
    if fault.code == code_pb2.OK and delay == 0 and not fault.evolve:
        violations.append(
            violation(
                "fault.code",
                "the fault neither fails, delays nor evolves calls: set a code, a delay or evolve",
            )
        )
    if fault.evolve and fault.code != code_pb2.OK:
        violations.append(
            violation("fault.evolve", "evolves the answers of calls that succeed: set no code")
        )
    return violations
