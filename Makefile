# trialpipe — every target is documented by its `##` comment; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
BIN := $(TARGET_DIR)/debug/trialpipe
PIPELINE ?= pipelines/msc_cirrhosis.toml
OUT ?= out/MSC-LC
# The input files of PIPELINE (sample pipelines keep theirs in sample_data/<pipeline name>/);
# set INPUTS for a pipeline that reads elsewhere.
INPUTS ?= $(wildcard sample_data/$(basename $(notdir $(PIPELINE)))/*)
SOURCES := Cargo.toml Cargo.lock $(shell find src -type f)

.PHONY: help run build test lint fmt doc sample-data bench bench-mmrm check-pipelines ingest validate derive analyze report clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_ -]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

build: $(BIN) ## Build the debug binary (first build about 5 minutes on 2 cores: polars)

# The binary is rebuilt when a source file changes (cargo decides what to recompile).
$(BIN): $(SOURCES)
	$(CARGO) build --bin trialpipe

# File-level dependencies: each stage's output is remade only when the binary, the pipeline file
# or an input file is newer. Exit 1 means "completed with warnings" (the sample data is messy on
# purpose); 2 and above fail the target. A stage command runs its upstream stages in memory and
# publishes its outputs as a set, so the outputs of later stages are replaced by that set.
STAGE = @$(BIN) $(1) $(PIPELINE); rc=$$?; if [ $$rc -gt 1 ]; then exit $$rc; fi; touch -c $@
$(OUT)/manifest.json: $(BIN) $(PIPELINE) $(INPUTS)
	$(call STAGE,run)
$(OUT)/ingest/labs.parquet: $(BIN) $(PIPELINE) $(INPUTS)
	$(call STAGE,ingest)
$(OUT)/validation/summary.json: $(BIN) $(PIPELINE) $(INPUTS)
	$(call STAGE,validate)
$(OUT)/adam/adlb.parquet: $(BIN) $(PIPELINE) $(INPUTS)
	$(call STAGE,derive)
$(OUT)/results/comparisons.parquet: $(BIN) $(PIPELINE) $(INPUTS)
	$(call STAGE,analyze)
$(OUT)/report/index.html: $(BIN) $(PIPELINE) $(INPUTS)
	$(call STAGE,report)

run: $(OUT)/manifest.json ## Run the flagship pipeline on sample_data/ and say where the outputs are
	@echo
	@echo "Outputs are in $(OUT)/ (manifest.json lists every file); the report is $(OUT)/report/index.html."
	@echo "Open the datasets with:"
	@echo "  python3 -c \"import pandas as pd; print(pd.read_parquet('$(OUT)/adam/adlb.parquet').head())\""
	@echo "  python3 -c \"import polars as pl; print(pl.read_parquet('$(OUT)/results/comparisons.parquet'))\""
	@echo "  duckdb -c \"SELECT PARAMCD, AVISIT, count(*) FROM '$(OUT)/adam/adlb.parquet' GROUP BY ALL\""

ingest: $(OUT)/ingest/labs.parquet ## Run only the ingest stage of PIPELINE (when an input changed)
validate: $(OUT)/validation/summary.json ## Run PIPELINE up to validate (when an input changed)
derive: $(OUT)/adam/adlb.parquet ## Run PIPELINE up to derive (when an input changed)
analyze: $(OUT)/results/comparisons.parquet ## Run PIPELINE up to analyze (when an input changed)
report: $(OUT)/report/index.html ## Run PIPELINE up to the report (when an input changed)

check-pipelines: build ## Check every pipeline file under pipelines/
	@for p in pipelines/*.toml; do $(BIN) check $$p || exit $$?; done

test: ## Every test: unit, integration (drives the binary), R oracle comparisons
	$(CARGO) test --all-targets

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt

doc: ## Build the API documentation (target/doc)
	$(CARGO) doc --no-deps

# Pipelines with a [simulation] section; each writes sample_data/<name>/.
SIMULATED := msc_cirrhosis msc_diabetes ucmsc_hbv_cirrhosis hbv_response cart_transplant

sample-data: build ## Regenerate sample_data/<name> of every simulated pipeline (seed from each pipeline)
	@for p in $(SIMULATED); do echo "$(BIN) simulate pipelines/$$p.toml --out sample_data/$$p"; \
	  $(BIN) simulate pipelines/$$p.toml --out sample_data/$$p || exit $$?; done

bench: ## Benchmarks: validate/derive vs pandas, then MMRM vs nlme (release; docs/benchmarks.md)
	bash benches/run.sh
	bash benches/mmrm.sh

bench-mmrm: ## MMRM vs nlme::gls only (SUBJECTS=1000000 for the large run; docs/benchmarks.md)
	bash benches/mmrm.sh

clean: ## Remove outputs (not the build cache)
	rm -rf out
