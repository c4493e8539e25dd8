"""``oddoneout serve``: one served system of a study, from its config into its study folder's store.

The server is a writer of the study folder like ``run`` and ``collect``: it holds the folder's
writer lock (:mod:`oddoneout.folder_lock`) for as long as it serves, and is the one process that
opens the system's store. It makes the stimulus table first when the folder has none, writes
``config.toml`` as a run does, and exports the store to Parquet when it stops (Ctrl-C or SIGTERM),
as the collect stage does for a served system.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import uvicorn  # here, not in the function: a missing serve extra fails at import, where the CLI explains it

from oddoneout.atomic import write_text
from oddoneout.config import dump_config, load_config
from oddoneout.errors import InputError
from oddoneout.folder_lock import writer_lock
from oddoneout.progress import console
from oddoneout.study_folder import StudyFolder

#: Options of the uvicorn server: its own log quiet but for problems, no ``server`` header, no lifespan
#: (the store is opened and closed around the server, not inside it).
_UVICORN: dict[str, Any] = {"log_level": "warning", "server_header": False, "lifespan": "off"}


class _Stopped(Exception):
    """SIGTERM, as uvicorn passes it on once it has shut down."""


def _stopped(signum: int, frame: Any) -> None:
    raise _Stopped


def _run_until_stopped(server: Any) -> None:
    """Run a uvicorn server until Ctrl-C or SIGTERM, and return normally after its graceful shutdown.

    uvicorn finishes the requests in flight, then raises the signal again with the handler that was
    in place before it started; here that handler raises, so the caller goes on to close the store.
    """
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        server.run()
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_study(
    config_path: str | Path,
    out: str | Path,
    system: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, int]:
    """Serve the odd-one-out experiment of a ``human`` system until stopped; its store's counts at the end.

    Parameters
    ----------
    config_path : path
        Study config (TOML).
    out : path
        The study folder (created); the answers go to ``triplets/<system>.sqlite``.
    system : str, optional
        The system to serve (default: the config's only ``agent = "human"`` system).
    host, port : str, int
        Where to listen (default: loopback only; put a TLS reverse proxy in front to serve the internet).
    overrides : dict, optional
        ``{section: {key: value}}`` applied over the config file.

    Raises
    ------
    InputError
        On a bad config, no system to serve, unset or weak secrets (:mod:`oddoneout.serve.tokens`),
        a weak admin token (:mod:`oddoneout.serve.admin`), a folder another process writes, or an
        item's media file missing or outside the media folder (:mod:`oddoneout.serve.media`).
    """
    from oddoneout.collect.leases import LeaseBook
    from oddoneout.collect.store import TripletStore
    from oddoneout.pipeline.collect import export_store
    from oddoneout.pipeline.stage import StudyRun
    from oddoneout.pipeline.stimuli import StimuliStage
    from oddoneout.serve.admin import ADMIN_ENV, AdminKey
    from oddoneout.serve.app import create_app
    from oddoneout.serve.experiment import build_experiment, design_refresh, pick_system
    from oddoneout.serve.media import media_folder
    from oddoneout.serve.tokens import ServerKeys

    config = load_config(config_path, overrides)
    name = pick_system(config, system)
    keys = ServerKeys.from_env(scope=f"{config.study.name}/{name}")
    admin = AdminKey.from_env(others=(keys.secret.decode(), keys.salt.decode()))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"output folder {out} is a file: give --out a folder")
    folder = StudyFolder(out)
    out.mkdir(parents=True, exist_ok=True)
    with writer_lock(folder.lock, command=f"oddoneout serve ({name})"):
        write_text(folder.config, dump_config(config))
        run = StudyRun(config, folder, [name])
        if not folder.stimuli.is_file():
            StimuliStage().run(run)
        files = folder.system(name)
        experiment = build_experiment(config, name, run.stimuli, files.store if files.store.is_file() else None)
        files.store.parent.mkdir(parents=True, exist_ok=True)
        with TripletStore(files.store, agent=name, model=experiment.model, item_ids=experiment.item_ids) as store:
            book = LeaseBook(
                store,
                experiment.designs,
                lease_seconds=experiment.settings.lease_seconds,
                catch_trials=experiment.settings.catch_trials,
                refresh=design_refresh(config, name, run.stimuli, store),
            )
            app = create_app(experiment, book, keys, admin)
            console.print(f"serving system {name!r} at http://{host}:{port}/ (Ctrl-C stops; answers: {files.store})")
            if experiment.media:
                folder_of = media_folder(config, experiment.settings)
                n_items = len(experiment.item_ids)
                console.print(f"{len(experiment.media)} of {n_items} items shown as media from {folder_of}")
            if admin is None:
                console.print(f"the admin page is off (set ${ADMIN_ENV} to a secret of 32+ characters to turn it on)")
            else:
                console.print(f"admin page: http://{host}:{port}/admin (its token: ${ADMIN_ENV})")
            _run_until_stopped(uvicorn.Server(uvicorn.Config(app, host=host, port=port, **_UVICORN)))
        counts = export_store(files.store, files.export, name, reproducible=False)
    console.print(f"stopped; {counts.get('ok', 0)} answers stored, exported to {files.export}")
    return counts
