# Two commands matter: `make quickstart` (bake a project and train it on real sample images)
# and `make test` (the template's test suite; .ci/run runs the same command).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROJECT := build/pet-classifier
TRAIN_FLAGS := --data data/digits --backbone efficientnet_lite0 --image-size 64 --epochs 3 --batch-size 64 \
               --accelerator cpu --name quickstart

.PHONY: quickstart test test-fast lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

quickstart: $(BIN)/python
	$(BIN)/pip install -q cookiecutter scikit-learn
	$(BIN)/cookiecutter --no-input -f -o build .
	$(BIN)/pip install -q -e $(PROJECT)
	$(BIN)/python benchmarks/sample_data.py digits $(PROJECT)/data/digits
	rm -rf $(PROJECT)/runs/quickstart
	@# With internet this fine-tunes timm's pretrained weights; offline it says so and trains from scratch.
	cd $(PROJECT) && ( ../../$(BIN)/pet-classifier train $(TRAIN_FLAGS) 2> .quickstart.err \
	  || { if grep -q -- "--no-pretrained" .quickstart.err; then \
	         echo "Pretrained weights could not be downloaded (no internet?); training from scratch instead."; \
	         rm -rf runs/quickstart; \
	         ../../$(BIN)/pet-classifier train $(TRAIN_FLAGS) --no-pretrained --freeze-epochs 0 --lr 0.003 \
	           --backbone-lr-factor 1; \
	       else cat .quickstart.err; exit 1; fi; } )
	cd $(PROJECT) && ../../$(BIN)/pet-classifier predict runs/quickstart data/digits/train/seven data/digits/train/three --top-k 2 | tail -n 12
	@echo
	@echo "Done. Your project is in $(PROJECT). See the training curves with:"
	@echo "    $(BIN)/tensorboard --logdir $(PROJECT)/runs"

test: $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -m pytest

test-fast: $(BIN)/python
	$(BIN)/python -m pytest -m "not slow"

lint: $(BIN)/python
	$(BIN)/ruff check tests benchmarks

clean:
	rm -rf build .pytest_cache
