# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Debian packages the tests need: PortAudio + a PulseAudio null sink for real capture,
# flite/sox to make speech, tmux to drive the live terminal view.
DEB_PACKAGES := libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins flite sox tmux redis-server haproxy

.PHONY: demo test check lint typecheck pytest bench soak deps clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[backend,test]'
	touch $@

venv: $(BIN)/.installed

## deps: Debian packages (installed when run as root; otherwise they must be present).
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else \
		echo "missing Debian packages: $$missing (run 'make deps' as root)"; exit 1; \
	fi

demo: venv
	$(BIN)/live-listener demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

## pytest: two runs side by side. Most of the suite waits on real time (streams in real
## time, outages, restarts), so the long end-to-end modules run beside the rest, each run
## with its own log capture, token scan and hypothesis cache (one cache written by two runs
## at once loses files); the slow run's report is printed when both end,
## and either failing fails the target.
SLOW_TESTS := tests/asr tests/deploy tests/packaging tests/notebooks
pytest: venv deps
	@rm -f .pytest-slow.log; \
	HYPOTHESIS_STORAGE_DIRECTORY=.hypothesis-slow \
	$(BIN)/pytest -p no:cacheprovider $(SLOW_TESTS) > .pytest-slow.log 2>&1 & slow=$$!; \
	$(BIN)/pytest $(addprefix --ignore=,$(SLOW_TESTS)); rest=$$?; \
	wait $$slow; slow_rc=$$?; \
	echo "== $(SLOW_TESTS)"; cat .pytest-slow.log; \
	[ $$rest -eq 0 ] && [ $$slow_rc -eq 0 ]

test: deps venv lint typecheck pytest

## bench: every benchmark script (a module with a main guard; helpers have none).
bench: venv
	@for b in $$(grep -l '^if __name__ == "__main__":' benchmarks/*.py); do \
		echo "== $$b"; $(BIN)/python $$b || exit 1; done

## soak: five minutes through faults; prints the RSS and heap slopes after warm-up.
soak: venv
	$(BIN)/python benchmarks/soak.py --seconds 300

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
