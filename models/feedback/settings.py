"""Settings of ``finsentinel feedback``: environment variables ``FINSENTINEL_FEEDBACK_<FIELD>``.

Options on the command line beat the environment. The archive that holds the
text as scored defaults to the archive sink's directory
(``FINSENTINEL_ARCHIVE_ROOT_DIR``), resolved by the command.

>>> FeedbackSettings().store_path
PosixPath('var/feedback.sqlite')
>>> FeedbackSettings(publish_timeout_s=0)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for FeedbackSettings
...
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from stream.settings import ServiceSettings

__all__ = ["FeedbackSettings"]


class FeedbackSettings(ServiceSettings):
    """Where corrections are stored, where their texts are found, which labels are allowed."""

    model_config = SettingsConfigDict(
        env_prefix="FINSENTINEL_FEEDBACK_", extra="forbid", frozen=True
    )

    #: The SQLite feedback store (created with its directory on first use).
    store_path: Path = Path("var/feedback.sqlite")
    #: Archive directory with the scored documents (None: the archive sink's directory).
    archive_dir: Path | None = None
    #: Model directory whose card's labels a correction may use (None: the shipped model).
    model_dir: Path | None = None
    #: How long to wait for the broker to acknowledge each published correction.
    publish_timeout_s: Annotated[float, Field(gt=0)] = 30.0
