"""People as agents: the online odd-one-out experiment of a ``human`` system (``oddoneout serve``).

One server serves one system of a study: each participant session leases trials of the system's
designs (:mod:`oddoneout.collect.leases`) and every answer lands in the system's
:class:`~oddoneout.collect.store.TripletStore`, so the later stages treat people like any agent.

Modules: :mod:`.tokens` (signed session tokens, salted participant ids, completion codes),
:mod:`.platforms` (Prolific/MTurk URL parameters), :mod:`.experiment` (what a system's sessions
are shown), :mod:`.media` (the items' image, video and audio files, checked at start),
:mod:`oddoneout.collect.flow` (the consent, instructions, break and debrief texts, the trial
question, the completion URL), :mod:`.ratelimit` (token buckets per session and per client
address), :mod:`.admin` (the admin token and the summary the admin page shows), :mod:`.app` (the
ASGI app: pages, API, security headers), :mod:`.server` (the study folder's lock, the store,
uvicorn), :mod:`.jspsych` (the answers as jsPsych data).
"""
