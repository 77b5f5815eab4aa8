# The only set-up a newcomer needs: `make demo` and `make test` create .venv on first use.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.caig-installed
PROFILE ?= local
OUT     ?= runs/demo

.PHONY: demo test smoke-production docs lint venv clean release

venv: $(STAMP)

# torch first, from the CPU build on this machine's disk, so no resolver pulls CUDA wheels;
# then the package with every extra, every transitive version pinned by constraints.txt.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[train,serve,pipelines,dev,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/caig run --local --profile $(PROFILE) --out $(OUT)

# Two lanes side by side, each mostly one core: the model servers under fuzzing and faults (tests/serving)
# and the CLI's end-to-end runs in one, everything else in the other; the second lane's log follows the
# first's. Every test runs in exactly one lane (TEST_LANE_1 lists the folders of the first).
TEST_LANE_1 := tests/serving tests/cli
test: $(STAMP)
	@mkdir -p runs; \
	$(VENV)/bin/pytest -q -p no:cacheprovider $(TEST_LANE_1) > runs/test-lane-1.log 2>&1 & lane1=$$!; \
	$(VENV)/bin/pytest -q -p no:cacheprovider $(addprefix --ignore=,$(TEST_LANE_1)); lane2=$$?; \
	wait $$lane1; lane1=$$?; \
	echo "== lane 1 ($(TEST_LANE_1)):"; cat runs/test-lane-1.log; \
	echo "make test: lane 1 exit $$lane1, lane 2 exit $$lane2"; \
	test $$lane1 -eq 0 -a $$lane2 -eq 0

# The production profile at CPU cost on an imported release (configs/smoke-production.yaml, caig.smoke).
smoke-production: $(STAMP)
	$(VENV)/bin/pytest -q -p no:cacheprovider -m smoke tests/smoke

# The documentation site (mkdocs.yml): build/site/, any warning an error; docs/configuration.md is
# generated at build time from the config dataclasses (docs/hooks/config_reference.py).
docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict -d build/site

# Build and push every image ($$CAIG_IMAGE_REGISTRY/<name>:$$CAIG_IMAGE_TAG) with docker, podman or buildah,
# then pin the pushed digests in manifests/overlays/production/kustomization.yaml (caig.deploy.release).
release: $(STAMP)
	$(VENV)/bin/caig release --profile production $(if $(TOOL),--tool $(TOOL))

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf runs build .pytest_cache
