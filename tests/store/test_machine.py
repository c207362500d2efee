"""The store against a trivial model (a dict of KeyValues + the dict at every revision + the event list),
driven by Hypothesis, on every backend of tests/store/backends.py; a backend that keeps its state
across a reopen (durable, etcd) is also closed and reopened in the middle."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from orchestra.store import (
    CompactedError,
    Compare,
    CompareFailed,
    Delete,
    Event,
    KeyValue,
    Put,
    Store,
    Watcher,
)
from tests.store.backends import BACKENDS, BackendCase

KEYS = st.sampled_from(["a", "ab", "abc", "b", "ba", "c"])
PREFIXES = st.sampled_from(["", "a", "ab", "b", "c", "d"])
VALUES = st.binary(max_size=3)
OPS = st.lists(
    st.one_of(st.builds(Put, KEYS, VALUES), st.builds(Delete, KEYS)),
    max_size=4,
    unique_by=lambda op: op.key,
)


def drain(watcher: Watcher) -> list[Event]:
    events: list[Event] = []
    while True:
        try:
            events += watcher.receive_nowait()
        except trio.WouldBlock:
            return events


class StoreMachine(RuleBasedStateMachine):
    case: BackendCase  # set by machine_for()

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="store-machine-"))
        self.store = self.open()
        self.model: dict[str, KeyValue] = {}
        self.states: list[dict[str, KeyValue]] = [{}]  # states[r] = the model at revision r
        self.events: list[Event] = []
        self.compacted = 0
        self.follower = self.store.watch("", start_revision=1)
        self.followed = 0  # events the follower has delivered

    def open(self) -> Store:
        return self.case.open(self.directory)

    # --- the model ---------------------------------------------------------------------------------

    def apply(self, ops: list[Put | Delete]) -> list[KeyValue | None]:
        revision = len(self.states)
        events: list[Event] = []
        responses: list[KeyValue | None] = []
        for op in ops:
            prev = self.model.get(op.key)
            if isinstance(op, Put):
                create, version = (revision, 1) if prev is None else (prev.create_revision, prev.version + 1)
                kv = self.model[op.key] = KeyValue(op.key, op.value, create, revision, version)
                events.append(Event("PUT", kv, prev))
                responses.append(kv)
            else:
                if prev is not None:
                    del self.model[op.key]
                    tomb = KeyValue(op.key, prev.value, prev.create_revision, revision, 0)
                    events.append(Event("DELETE", tomb, prev))
                responses.append(prev)
        if events:
            self.states.append(dict(self.model))
            self.events += events
        return responses

    def mod(self, key: str) -> int:
        kv = self.model.get(key)
        return 0 if kv is None else kv.mod_revision

    def retained(self, n: int) -> int:
        """A revision in [compacted, revision] chosen by n."""
        return self.compacted + n % (len(self.states) - self.compacted)

    # --- rules -------------------------------------------------------------------------------------

    @rule(key=KEYS, value=VALUES)
    def put(self, key: str, value: bytes) -> None:
        assert self.store.put(key, value) == self.apply([Put(key, value)])[0]

    @rule(key=KEYS, value=VALUES, correct=st.booleans())
    def put_cas(self, key: str, value: bytes, correct: bool) -> None:
        expect = self.mod(key) if correct else self.mod(key) + 1
        try:
            kv = self.store.put(key, value, expect_mod_revision=expect)
        except CompareFailed as exc:
            assert not correct
            assert (exc.expected, exc.actual) == (expect, self.mod(key))
        else:
            assert correct
            assert kv == self.apply([Put(key, value)])[0]

    @rule(key=KEYS, correct=st.booleans(), conditional=st.booleans())
    def delete(self, key: str, correct: bool, conditional: bool) -> None:
        expect = None if not conditional else self.mod(key) if correct else self.mod(key) + 1
        try:
            prev = self.store.delete(key, expect_mod_revision=expect)
        except CompareFailed:
            assert conditional and not correct
        else:
            assert not conditional or correct
            assert prev == self.apply([Delete(key)])[0]

    @rule(key=KEYS, delta=st.integers(-1, 1), success=OPS, failure=OPS)
    def txn(self, key: str, delta: int, success: list[Put | Delete], failure: list[Put | Delete]) -> None:
        holds = delta == 0
        result = self.store.txn([Compare(key, "mod", "==", self.mod(key) + delta)], success, failure)
        assert result.succeeded is holds
        assert result.responses == self.apply(success if holds else failure)
        assert result.revision == len(self.states) - 1

    @rule(n=st.integers(0, 1000))
    def compact(self, n: int) -> None:
        revision = self.retained(n)
        self.store.compact(revision)
        self.compacted = max(self.compacted, revision)

    @rule(key=KEYS, n=st.integers(0, 1000))
    def get_at(self, key: str, n: int) -> None:
        revision = self.retained(n)
        assert self.store.get(key, revision=revision) == self.states[revision].get(key)

    @rule(
        prefix=PREFIXES,
        n=st.integers(0, 1000),
        limit=st.none() | st.integers(1, 3),
        start_after=st.none() | KEYS,
    )
    def range_at(self, prefix: str, n: int, limit: int | None, start_after: str | None) -> None:
        revision = self.retained(n)
        state = self.states[revision]
        want = [
            state[k]
            for k in sorted(state)
            if k.startswith(prefix) and (start_after is None or k > start_after)
        ]
        assert self.store.range(prefix, revision=revision, limit=limit, start_after=start_after) == (
            want[:limit],
            revision,
        )

    @rule(prefix=PREFIXES, n=st.integers(0, 1000))
    def watch_replay(self, prefix: str, n: int) -> None:
        start = self.retained(n) + 1
        watcher = self.store.watch(prefix, start_revision=start)
        want = [e for e in self.events if e.revision >= start and e.kv.key.startswith(prefix)]
        assert drain(watcher) == want
        watcher.close()

    @rule(n=st.integers(0, 1000))
    def watch_compacted(self, n: int) -> None:
        if self.compacted == 0:
            return
        start = 1 + n % self.compacted
        try:
            self.store.watch("", start_revision=start)
        except CompactedError as exc:
            assert exc.compact_revision == self.compacted
        else:
            raise AssertionError(f"watch from {start} after compacting {self.compacted}")

    # --- invariants --------------------------------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        assert self.store.revision == len(self.states) - 1
        assert self.store.compact_revision == self.compacted
        assert self.store.count("") == len(self.model)
        assert self.store.count("a") == sum(k.startswith("a") for k in self.model)

    @invariant()
    def follower_sees_every_event_in_order(self) -> None:
        got = drain(self.follower)
        assert got == self.events[self.followed : self.followed + len(got)]
        self.followed += len(got)
        assert self.followed == len(self.events)

    @rule()
    def snapshot(self) -> None:
        trio.run(self.store.snapshot)

    @precondition(lambda self: self.case.reopens and len(self.states) > 1)
    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = self.open()
        # history before a restart is gone: the state is as it was, compacted at the revision
        self.compacted = len(self.states) - 1
        self.follower = self.store.watch("", start_revision=self.compacted + 1)
        self.followed = len(self.events)

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)


EXAMPLES = {"memory": 150, "durable": 60, "etcd": 25}  # a durable or etcd example writes and fsyncs files


def machine_for(case: BackendCase) -> type[StoreMachine]:
    return type(f"{case.name.title()}StoreMachine", (StoreMachine,), {"case": case})


@pytest.mark.parametrize("case", BACKENDS, ids=[case.name for case in BACKENDS])
def test_store_matches_the_model(case: BackendCase) -> None:
    run_state_machine_as_test(
        machine_for(case),
        settings=settings(max_examples=EXAMPLES[case.name], stateful_step_count=40, deadline=None),
    )
