"""Stimulus sets: ids, captions, media and ratings."""

from oddoneout.stimuli.stimulus_set import StimulusSet

__all__ = ["StimulusSet"]
