# The two set-up commands of the README. Both create and use .venv at the repo root.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.kinemo-installed
# The CPU torch wheel lives on local disk here; pass it to pip when present.
WHEELS := $(wildcard /opt/wheels)
PIPX   := $(if $(WHEELS),--find-links $(WHEELS),)

.PHONY: demo test test-blender42 venv clean extension

venv: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned, so nothing later can pull a CUDA build
	$(PY) -m pip install -q $(PIPX) torch==2.13.0
	$(PY) -m pip install -q $(PIPX) -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/kinemo demo --out out/demo --force

# One installable zip per platform in dist/ (wheels downloaded into build/extension).
extension: $(STAMP)
	$(PY) tools/build_extension.py --out dist

test: $(STAMP)
	$(PY) -m pytest -q -rs

# The add-on's Blender tests again on Blender 4.2 (the oldest supported; its own venv under build/).
test-blender42:
	tools/test_blender42.sh

clean:
	rm -rf $(VENV) out build/extension dist
