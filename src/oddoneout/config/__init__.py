"""Study configuration: a TOML file naming the stimuli, the design, the systems and each stage's settings.

:func:`load_config` reads and checks it into a :class:`StudyConfig` (typed settings per section,
:mod:`oddoneout.config.sections`; per system, its agent kind's settings,
:mod:`oddoneout.agents.registry`); :func:`check_inputs` checks the files it names.
"""

from __future__ import annotations

from oddoneout.config.inputs import check_inputs
from oddoneout.config.load import dump_config, load_config
from oddoneout.config.sections import SECTIONS
from oddoneout.config.study import StudyConfig, SystemConfig
from oddoneout.settings import SAFE_NAME, is_safe_name

__all__ = [
    "SAFE_NAME",
    "SECTIONS",
    "StudyConfig",
    "SystemConfig",
    "check_inputs",
    "dump_config",
    "is_safe_name",
    "load_config",
]
