"""Built-in studies: the synthetic emotion world (the default) and shipped study configs."""

from importlib.resources import files
from pathlib import Path


def builtin_config(name: str) -> Path:
    """Path of a study config shipped with the package (``"synthetic"`` is the default study)."""
    path = Path(str(files("oddoneout.studies") / f"{name}.toml"))
    if not path.is_file():
        available = sorted(p.name[:-5] for p in files("oddoneout.studies").iterdir() if p.name.endswith(".toml"))
        raise FileNotFoundError(f"no built-in study {name!r}; available: {available}")
    return path
