# The two ways in. Both set up what they need first (idempotent).
.PHONY: run test bench build setup cluster
run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

bench:
	bash scripts/bench.sh

build:
	bash scripts/setup.sh run && bash scripts/build.sh release

setup:
	bash scripts/setup.sh test

# Two replicas on PostgreSQL behind nginx, on this machine (scripts/cluster.sh).
cluster:
	bash scripts/cluster.sh
