# trialpipe — every target is documented by its `##` comment; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
BIN := $(TARGET_DIR)/debug/trialpipe
PIPELINE ?= pipelines/msc_cirrhosis.toml
OUT ?= out/MSC-LC

.PHONY: help run build test lint fmt doc sample-data bench bench-mmrm check-pipelines ingest validate derive analyze report clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_ -]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

build: ## Build the debug binary (first build about 5 minutes on 2 cores: polars)
	$(CARGO) build --bin trialpipe

run: build ## Run the flagship pipeline on sample_data/ and say where the outputs are
	@# Exit 1 means "completed with warnings" (the sample data is messy on purpose); 2+ fails.
	@$(BIN) run $(PIPELINE); rc=$$?; if [ $$rc -gt 1 ]; then exit $$rc; fi
	@echo
	@echo "Outputs are in $(OUT)/ (manifest.json lists every file); the report is $(OUT)/report/index.html."
	@echo "Open the datasets with:"
	@echo "  python3 -c \"import pandas as pd; print(pd.read_parquet('$(OUT)/adam/adlb.parquet').head())\""
	@echo "  python3 -c \"import polars as pl; print(pl.read_parquet('$(OUT)/results/comparisons.parquet'))\""
	@echo "  duckdb -c \"SELECT PARAMCD, AVISIT, count(*) FROM '$(OUT)/adam/adlb.parquet' GROUP BY ALL\""

ingest: build ## Run only the ingest stage of PIPELINE
	$(BIN) ingest $(PIPELINE)

validate derive analyze report: build ## Run PIPELINE up to one stage (upstream stages run in memory)
	@$(BIN) $@ $(PIPELINE); rc=$$?; if [ $$rc -gt 1 ]; then exit $$rc; fi

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

sample-data: build ## Regenerate sample_data/msc_cirrhosis (60 subjects, seed from the pipeline)
	$(BIN) simulate pipelines/msc_cirrhosis.toml --out sample_data/msc_cirrhosis

bench: ## Benchmarks: validate/derive vs pandas, then MMRM vs nlme (release; docs/benchmarks.md)
	bash benches/run.sh
	bash benches/mmrm.sh

bench-mmrm: ## MMRM vs nlme::gls only (SUBJECTS=1000000 for the large run; docs/benchmarks.md)
	bash benches/mmrm.sh

clean: ## Remove outputs (not the build cache)
	rm -rf out
