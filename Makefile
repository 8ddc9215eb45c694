# The two ways in. Both set up what they need first (idempotent).
.PHONY: run test bench build setup
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
