# The two commands of the README, and a few conveniences.
.PHONY: demo test check bench openapi

demo:  ## Install, load synthetic data into ./flowscope.db and serve it on 127.0.0.1:8000
	bash scripts/demo.sh

test:  ## Install, start local services, then lint, type-check and run the whole test suite
	bash scripts/test.sh

check: test

bench:  ## Ingestion, SDK, change-point, cache, advisor, integration and dashboard benchmarks (analytics at 1M runs: bench/bench_analytics.py)
	.venv/bin/python bench/bench_ingest.py
	.venv/bin/python bench/bench_sdk.py
	.venv/bin/python bench/bench_changepoints.py
	.venv/bin/python bench/bench_cache.py
	.venv/bin/python bench/bench_advisor.py --runs 20000
	.venv/bin/python bench/bench_metrics.py
	.venv/bin/python bench/bench_otlp.py --runs 3000
	.venv/bin/python bench/bench_dify_import.py
	.venv/bin/python bench/bench_web.py

openapi:  ## Regenerate docs/openapi.json after changing the API
	.venv/bin/python -m flowscope openapi > docs/openapi.json
