"""Collect a design from a loopback chat server with collect_remote (run as a subprocess by test_async_runner.py).

Usage: python collect_async_slowly.py STORE BASE_URL N_TRIPLETS CONCURRENCY FLUSH_EVERY FLUSH_SECONDS

Exits 0 when done, 130 after a clean stop on SIGINT/SIGTERM (the note of the interruption on stderr).
"""

import sys

from oddoneout.agents.openai_chat import OpenAIChatAgent
from oddoneout.agents.prompts import PAPER_LLM_PROMPT
from oddoneout.collect.async_runner import collect_remote
from oddoneout.collect.designs import random_design
from oddoneout.collect.store import TripletStore

ITEMS = [f"item{i:02d}" for i in range(30)]
CAPTIONS = {item: f"a clip of {item}" for item in ITEMS}
NAME, MODEL = "llm", "loopback-model"


def make_agent(base_url: str) -> OpenAIChatAgent:
    return OpenAIChatAgent(NAME, MODEL, base_url, prompt=PAPER_LLM_PROMPT, captions=CAPTIONS, api_key_env=None)


def main() -> None:
    store_path, base_url = sys.argv[1], sys.argv[2]
    n_triplets, concurrency, flush_every = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    flush_seconds = float(sys.argv[6])
    design = random_design(ITEMS, n_triplets, seed=0)
    with TripletStore(store_path, NAME, MODEL, ITEMS) as store:
        try:
            summary = collect_remote(
                design,
                make_agent(base_url),
                store,
                concurrency=concurrency,
                flush_every=flush_every,
                flush_seconds=flush_seconds,
                backoff=0.01,
                progress=False,
            )
        except KeyboardInterrupt as interrupt:
            print("\n".join(getattr(interrupt, "__notes__", [])), file=sys.stderr, flush=True)
            sys.exit(130)
    print(summary.n_asked, flush=True)


if __name__ == "__main__":
    main()
