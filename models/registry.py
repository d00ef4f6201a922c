"""A small model registry: versions on disk, a pointer to the active one, a promotion log.

No torch, no Kafka: the scorer reads the pointer, ``finsentinel models`` writes it.
The layout of a registry directory::

    REGISTRY/
    ├── versions/
    │   ├── finsentinel-minilm-0.3.1/    a model directory (models/modeldir.py), copied in
    │   └── finsentinel-minilm-0.4.0/    and verified against its card's sha256s
    ├── ACTIVE                           one line: the name of the active version
    ├── promotions.jsonl                 one JSON object per promotion or rollback
    └── .lock                            serialises writers (flock)

A version's name is ``<card name>-<card version>``; a registered version is never
changed or replaced. ``ACTIVE`` is written to a temporary file and moved over the
old one (:func:`stream.files.durable_replace`), so a reader sees the old or the
new name, never a torn one. Each line of ``promotions.jsonl`` says when, from
which version to which, whether it was forced and why, and the comparison report
(:mod:`models.compare`) that allowed it; it is written (and fsynced) before the
pointer moves. Rolling back moves the pointer to the version active before the
current one, replaying the log as a stack (a promotion pushes, a rollback pops).

>>> import tempfile
>>> from models.modeldir import DEFAULT_MODEL_DIR, load_model_dir
>>> tmp = tempfile.TemporaryDirectory()
>>> reg = ModelRegistry(Path(tmp.name))
>>> card = load_model_dir(DEFAULT_MODEL_DIR).card
>>> entry = reg.register(DEFAULT_MODEL_DIR)  # named name-version: finsentinel-minilm-0.3.1
>>> entry.name == f"{card.name}-{card.version}"
True
>>> reg.promote(entry.name, report=None, force_reason="first model").to_version == entry.name
True
>>> reg.active_name() == entry.name, (reg.root / ACTIVE_FILE).read_text() == entry.name + "\\n"
(True, True)
>>> tmp.cleanup()
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from models.exceptions import ModelDirError, RegistryError
from models.modeldir import CARD_FILE, ModelCard, load_model_dir, sha256_file
from stream.files import durable_replace, fsync_path

__all__ = [
    "ACTIVE_FILE",
    "PROMOTIONS_FILE",
    "VERSIONS_DIR",
    "ModelRegistry",
    "Promotion",
    "RegistryEntry",
    "card_sha256",
    "check_report",
]

logger = logging.getLogger(__name__)

VERSIONS_DIR: Final = "versions"
ACTIVE_FILE: Final = "ACTIVE"
PROMOTIONS_FILE: Final = "promotions.jsonl"
_LOCK_FILE: Final = ".lock"
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,254}$")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def card_sha256(model_dir: Path) -> str:
    """sha256 of a model directory's card (which lists every file's sha256): its identity."""
    return sha256_file(Path(model_dir) / CARD_FILE)


def check_report(report: Mapping[str, Any], card: ModelCard, card_sha: str) -> None:
    """Raise :class:`RegistryError` unless ``report`` says this exact model is promotable.

    The report is the JSON of ``finsentinel models compare`` (:mod:`models.compare`).
    """
    new = report.get("new") or {}
    if new.get("card_sha256") != card_sha:
        raise RegistryError(
            f"the report compares {new.get('name')} {new.get('version')} "
            f"(card sha256 {str(new.get('card_sha256'))[:12]}), not this build of "
            f"{card.name} {card.version} ({card_sha[:12]}): run `finsentinel models compare` "
            "on the registered version"
        )
    if report.get("promotable") is not True:
        reasons = "; ".join(report.get("reasons") or ["the report does not say promotable"])
        raise RegistryError(
            f"{card.name} {card.version} failed the promotion gate: {reasons} "
            "(use --force with --reason to override)"
        )


@dataclass(frozen=True)
class RegistryEntry:
    """One registered version."""

    name: str
    path: Path
    card: ModelCard
    active: bool


@dataclass(frozen=True)
class Promotion:
    """One line of ``promotions.jsonl``."""

    at: str
    action: str
    from_version: str | None
    to_version: str
    forced: bool
    reason: str
    report: dict[str, Any] | None

    def to_json(self) -> str:
        """The JSON line (keys ``from`` and ``to`` for the versions)."""
        data = asdict(self)
        data["from"], data["to"] = data.pop("from_version"), data.pop("to_version")
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> Promotion:
        """Parse one line written by :meth:`to_json`."""
        data = json.loads(line)
        return cls(
            at=data["at"],
            action=data["action"],
            from_version=data.get("from"),
            to_version=data["to"],
            forced=bool(data.get("forced")),
            reason=data.get("reason", ""),
            report=data.get("report"),
        )


class ModelRegistry:
    """A registry directory (created on first write); see the module docstring."""

    def __init__(self, root: Path | str, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.root = Path(root)
        self._clock = clock

    @property
    def versions_dir(self) -> Path:
        """Where the versions live."""
        return self.root / VERSIONS_DIR

    @property
    def pointer_path(self) -> Path:
        """The ``ACTIVE`` file."""
        return self.root / ACTIVE_FILE

    def register(self, model_dir: Path | str) -> RegistryEntry:
        """Copy a model directory in as a new version, verified against its card's hashes.

        :class:`~models.exceptions.ModelDirError` if the source fails its checks;
        :class:`RegistryError` if the version is already registered.
        """
        source = load_model_dir(model_dir, verify_hashes=True)
        name = self._entry_name(source.card)
        final = self.versions_dir / name
        with self._locked():
            if final.exists():
                raise RegistryError(
                    f"{name} is already registered in {self.root}; give the new model "
                    "another version (finsentinel export --version)"
                )
            staging = self.versions_dir / f".incoming-{uuid.uuid4().hex}"
            try:
                shutil.copytree(source.path, staging)
                copied = load_model_dir(staging, verify_hashes=True)
                if card_sha256(staging) != card_sha256(source.path):
                    raise ModelDirError(f"{source.path}: the card changed while it was copied")
                for path in sorted(staging.rglob("*")):
                    if path.is_file():
                        fsync_path(path)
                os.rename(staging, final)
                fsync_path(self.versions_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        logger.info("registered %s from %s", name, source.path)
        return RegistryEntry(name, final, copied.card, active=False)

    def entries(self) -> list[RegistryEntry]:
        """Every registered version, oldest card first."""
        if not self.versions_dir.is_dir():
            return []
        active = self.active_name()
        found = []
        for path in self.versions_dir.iterdir():
            if path.name.startswith(".") or not path.is_dir():
                continue
            card = load_model_dir(path, verify_hashes=False).card
            found.append(RegistryEntry(path.name, path, card, active=path.name == active))
        return sorted(found, key=lambda e: (e.card.created_at, e.name))

    def entry(self, name: str) -> RegistryEntry:
        """The registered version ``name``; :class:`RegistryError` if there is none."""
        path = self.versions_dir / name
        if not _NAME.match(name) or not path.is_dir():
            known = ", ".join(e.name for e in self.entries()) or "none"
            raise RegistryError(f"{name!r} is not registered in {self.root} (registered: {known})")
        card = load_model_dir(path, verify_hashes=False).card
        return RegistryEntry(name, path, card, active=name == self.active_name())

    def active_name(self) -> str | None:
        """The name ``ACTIVE`` points at; ``None`` before the first promotion."""
        try:
            name = self.pointer_path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if not _NAME.match(name):
            raise RegistryError(f"{self.pointer_path}: not a version name: {name[:80]!r}")
        return name

    def active(self) -> RegistryEntry | None:
        """The active version; :class:`RegistryError` if the pointer names a missing one."""
        name = self.active_name()
        return None if name is None else self.entry(name)

    def history(self) -> list[Promotion]:
        """Every promotion and rollback, oldest first."""
        path = self.root / PROMOTIONS_FILE
        if not path.is_file():
            return []
        lines = path.read_text(encoding="utf-8").splitlines()
        return [Promotion.from_json(line) for line in lines if line.strip()]

    def promote(
        self,
        name: str,
        *,
        report: Mapping[str, Any] | None,
        force_reason: str | None = None,
    ) -> Promotion:
        """Make ``name`` active if ``report`` says it passed the gate, or forced with a reason."""
        entry = self.entry(name)
        forced = force_reason is not None
        if forced and not force_reason.strip():  # type: ignore[union-attr]
            raise RegistryError("a forced promotion needs a reason (--reason)")
        if not forced:
            if report is None:
                raise RegistryError(
                    "promotion needs a comparison report (finsentinel models compare ... "
                    "--report FILE), or --force with --reason"
                )
            check_report(report, entry.card, card_sha256(entry.path))
        with self._locked():
            current = self.active_name()
            if current == name:
                raise RegistryError(f"{name} is already the active version")
            record = Promotion(
                at=self._clock().isoformat(),
                action="promote",
                from_version=current,
                to_version=name,
                forced=forced,
                reason=(force_reason or "").strip(),
                report=dict(report) if report is not None else None,
            )
            self._switch(record)
        return record

    def rollback(self, *, reason: str = "") -> Promotion:
        """Point ``ACTIVE`` back at the version active before the current one."""
        with self._locked():
            current = self.active_name()
            stack = self._stack()
            if not stack or stack[-1] != current:
                raise RegistryError(
                    f"{self.root}: ACTIVE ({current}) is not the last version promotions.jsonl "
                    "records; promote the version you want with --force and a reason"
                )
            if len(stack) < 2:
                raise RegistryError(f"nothing to roll back to: {current} is the first promotion")
            target = stack[-2]
            self.entry(target)
            record = Promotion(
                at=self._clock().isoformat(),
                action="rollback",
                from_version=current,
                to_version=target,
                forced=False,
                reason=reason.strip(),
                report=None,
            )
            self._switch(record)
        return record

    def _stack(self) -> list[str]:
        stack: list[str] = []
        for record in self.history():
            if record.action == "rollback" and stack:
                stack.pop()
            elif record.action == "promote":
                stack.append(record.to_version)
        return stack

    def _switch(self, record: Promotion) -> None:
        """Write the new pointer aside, log ``record`` durably, then move the pointer in.

        Caller holds the lock. A failed move takes the log line back; a crash
        between the two leaves the record without the move (``rollback`` then
        refuses until a forced promotion names the version wanted).
        """
        tmp = self.root / f".{ACTIVE_FILE}.{uuid.uuid4().hex}.tmp"
        try:
            tmp.write_text(record.to_version + "\n", encoding="utf-8")
            with (self.root / PROMOTIONS_FILE).open("a", encoding="utf-8") as fh:
                logged = fh.tell()
                fh.write(record.to_json() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
                try:
                    durable_replace(tmp, self.pointer_path)
                except OSError:
                    fh.truncate(logged)  # the pointer did not move: neither did the log
                    raise
        finally:
            tmp.unlink(missing_ok=True)
        logger.info(
            "%s: ACTIVE %s -> %s (%s)",
            self.root, record.from_version, record.to_version, record.action,
        )  # fmt: skip

    @staticmethod
    def _entry_name(card: ModelCard) -> str:
        name = f"{card.name}-{card.version}"
        if not _NAME.match(name):
            raise RegistryError(
                f"{name!r} cannot name a registry version: use letters, digits and . _ + - "
                "in the card's name and version"
            )
        return name

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        with (self.root / _LOCK_FILE).open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
