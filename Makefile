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
	$(PY) -m pip install -q -c constraints.txt -e '.[train,serve,pipelines,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/caig run --local --profile $(PROFILE) --out $(OUT)

test: $(STAMP)
	$(VENV)/bin/pytest -q -p no:cacheprovider

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
