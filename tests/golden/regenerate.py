"""Regenerate the committed reference summary of the small synthetic study.

Run only when a change of results is intended and named in the commit message::

    python tests/golden/regenerate.py

The reference records torch's CPU capability, so a machine whose kernels differ compares within
tolerances instead of exactly (see tests/test_golden_summary.py).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from golden_study import REFERENCE, run_small_study  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        reference = run_small_study(Path(tmp))
    REFERENCE.write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n")
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
