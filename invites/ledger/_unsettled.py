"""What a queued outcome the ledger could not record leaves: a warning (the intent reads
``unknown``)."""

from __future__ import annotations

import logging

from . import RecordKey

__all__ = ["log_unsettled"]

logger = logging.getLogger("invites.ledger")


def log_unsettled(key: RecordKey, state: str, error: BaseException | None) -> None:
    """Log a queued outcome that was not recorded: ``error`` it raised, or (None) the intent was
    no longer its owner's."""
    if error is not None:
        logger.warning(
            "ledger: outcome %s of user %r (run %r) not recorded; it reads unknown: %s",
            state,
            key.user_id,
            key.run,
            error,
        )
    else:
        logger.warning(
            "ledger: user %r (run %r) was taken over or settled meanwhile; %s not recorded",
            key.user_id,
            key.run,
            state,
        )
