# Two commands matter: `make quickstart` (bake a project and train it on real sample images)
# and `make test` (the template's test suite; .ci/run runs the same command).
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
BUILD ?= build
PROJECT := $(abspath $(BUILD))/pet-classifier
# A local weights file instead of timm's download, e.g. make quickstart WEIGHTS=lite0.pth (works offline).
WEIGHTS ?=
COMMON_FLAGS := --data data/digits --accelerator cpu --name quickstart
# With internet (or WEIGHTS): fine-tune a pretrained efficientnet_lite0 with the project's recipe. The digits
# are 8x8 scans, far from ImageNet's photos, so every layer learns at the full rate (--layer-decay 1) and at
# three times the photo default (--lr 0.006), and nothing is mirrored (--no-flip: a mirrored 3 is not a 3).
# How these were chosen, and what they reach: benchmarks/README.md, "The quickstart".
PRETRAINED_FLAGS := --backbone efficientnet_lite0 --image-size 72 --epochs 4 --batch-size 32 --layer-decay 1 \
                    --lr 0.006 --no-flip \
                    $(if $(WEIGHTS),--weights $(abspath $(WEIGHTS)))
# Offline: a small ResNet from scratch learns the digits well.
SCRATCH_FLAGS := --backbone resnet18 --image-size 32 --epochs 8 --batch-size 64 --no-pretrained --freeze-epochs 0 \
                 --lr 0.003 --backbone-lr-factor 1
# train's exit code when pretrained weights cannot be had (no internet, nothing cached).
NO_WEIGHTS_EXIT := 3

.PHONY: quickstart test test-fast test-floors run-floors lint clean project-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

quickstart: $(BIN)/python
	$(BIN)/pip install -q cookiecutter scikit-learn
	$(BIN)/cookiecutter --no-input -f -o $(BUILD) .
	$(BIN)/pip install -q -e $(PROJECT)
	$(BIN)/python tools/sample_data.py digits $(PROJECT)/data/digits
	rm -rf $(PROJECT)/runs/quickstart
	@# With internet (or WEIGHTS) this fine-tunes pretrained weights; offline it says so and trains from scratch.
	cd $(PROJECT) && { $(BIN)/pet-classifier train $(COMMON_FLAGS) $(PRETRAINED_FLAGS); code=$$?; \
	  if [ $$code -eq $(NO_WEIGHTS_EXIT) ]; then \
	    echo "Pretrained weights could not be downloaded (no internet?); training a small model from scratch instead."; \
	    rm -rf runs/quickstart; \
	    $(BIN)/pet-classifier train $(COMMON_FLAGS) $(SCRATCH_FLAGS) || exit $$?; \
	  elif [ $$code -ne 0 ]; then exit $$code; fi; }
	@# Predict on held-out photos: the validation split train made (splits.csv), never trained on.
	@echo "Predicting 6 photos the model was NOT trained on (held out for validation, see runs/quickstart/splits.csv):"
	cd $(PROJECT) && $(BIN)/pet-classifier predict runs/quickstart \
	  $$(awk -F, '{sub(/\r$$/, "")} $$3 == "val" && $$2 == "seven" {print "data/digits/" $$1}' runs/quickstart/splits.csv | head -n 3) \
	  $$(awk -F, '{sub(/\r$$/, "")} $$3 == "val" && $$2 == "three" {print "data/digits/" $$1}' runs/quickstart/splits.csv | head -n 3) --top-k 2
	@echo
	@echo "Done. Your project is in $(PROJECT). See the training curves with:"
	@echo "    $(BIN)/tensorboard --logdir $(PROJECT)/runs"

# The template's tools, then the generated project's own dependencies with every extra, read from its own
# pyproject.toml: bake it, install it with [all,dev], and remove the package itself again (the tests bake
# and import their own copies), so only its dependencies stay.
project-deps: $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	@# Baked afresh: cookiecutter -f overwrites files but keeps ones the template no longer has.
	rm -rf $(BUILD)/deps
	$(BIN)/python -m cookiecutter --no-input -o $(BUILD)/deps .
	$(BIN)/pip install -q "$(abspath $(BUILD))/deps/pet-classifier[all,dev]"
	$(BIN)/pip uninstall -q -y pet-classifier

# Everything with today's releases, then the generated project's fast tests at its declared floors.
test: project-deps
	$(BIN)/python -m pytest
	$(MAKE) run-floors

# The generated project's fast tests in a fresh venv where every direct dependency is at the floor its
# pyproject.toml declares (tools/floors.py reads them from the baked file, so they cannot drift), except
# torch and torchvision: the versions of the main venv, the one pair this machine serves. The fresh venv
# sees the main venv's packages behind its own (a .pth line), so pip finds torch there instead of copying
# its ~6 GB again (a second copy filled CI's disk); every floor pip installs lands in the fresh venv and
# comes first, and pip never uninstalls outside its own environment.
FLOORS_VENV := $(abspath $(BUILD))/floors-venv
test-floors: project-deps
	$(MAKE) run-floors

# test-floors' work, once project-deps has run.
run-floors:
	rm -rf $(FLOORS_VENV)
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/pip install -q --upgrade pip
	$(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
	  > "$$($(FLOORS_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/main-venv.pth"
	$(BIN)/python tools/floors.py $(BUILD)/deps/pet-classifier/pyproject.toml --keep torch torchvision \
	  > $(BUILD)/floors.txt
	$(FLOORS_VENV)/bin/pip install -q -c $(BUILD)/floors.txt -e "$(abspath $(BUILD))/deps/pet-classifier[all,dev]"
	cd $(BUILD)/deps/pet-classifier && HF_HUB_OFFLINE=1 $(FLOORS_VENV)/bin/python -m pytest -q -p no:cacheprovider \
	  -m "not slow"

test-fast: $(BIN)/python
	$(BIN)/python -m pytest -m "not slow"

lint: $(BIN)/python
	$(BIN)/ruff check tests benchmarks tools local_extensions.py

clean:
	rm -rf $(BUILD) .pytest_cache
