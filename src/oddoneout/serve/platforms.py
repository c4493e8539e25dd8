"""Recruitment platforms: who a participant is, from the URL parameters the platform adds to the study link.

Prolific adds ``PROLIFIC_PID``, ``STUDY_ID`` and ``SESSION_ID``; MTurk (an external question)
``workerId``, ``assignmentId`` and ``hitId``. The participant id is stored only as a salted hash
(:meth:`oddoneout.serve.tokens.ServerKeys.participant`); the platform's study and session ids
are stored as given, to match submissions. A link without these parameters is an anonymous
session (``platform = "none"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from oddoneout.errors import InputError

#: ``platform: (participant id, study id, session id)`` parameter names.
PLATFORMS = {
    "prolific": ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID"),
    "mturk": ("workerId", "hitId", "assignmentId"),
}
#: What a platform id may look like (Prolific ids are hex, MTurk's upper-case alphanumerics).
PLATFORM_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: The ``assignmentId`` MTurk sends while a worker only previews a HIT.
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"


@dataclass(frozen=True)
class Arrival:
    """Who arrived, as their link said."""

    platform: str
    participant_id: str | None
    study_ref: str | None
    session_ref: str | None


def arrival(params: Mapping[str, Any]) -> Arrival:
    """The platform and ids of a study link's parameters (others are ignored).

    Raises
    ------
    InputError
        When an id is not a short plain string, a platform's participant id is missing while its
        other ids are there, or the link is an MTurk preview.
    """
    for platform, names in PLATFORMS.items():
        if not any(name in params for name in names):
            continue
        values = []
        for name in names:
            value = params.get(name)
            if value is not None and (not isinstance(value, str) or not PLATFORM_ID.fullmatch(value)):
                raise InputError(f"{name} must be 1 to 128 letters, digits or '_.:-'")
            values.append(value)
        if values[0] is None:
            raise InputError(f"{names[0]} is missing from the study link")
        if platform == "mturk" and values[2] == MTURK_PREVIEW:
            raise InputError("accept the HIT before starting")
        return Arrival(platform, *values)
    return Arrival("none", None, None, None)
