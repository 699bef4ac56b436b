# backprop.h: build the examples, run the tests, run the benchmark.
#
#   make            build the examples into build/
#   make run        build and run the walkthrough (the textbook example, checked against finite differences)
#   make test       the test suite in every build we promise (C99, C++, float/double, gcc/clang/tcc, ...)
#   make sanitize   the test suite and examples under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench      matmul GFLOP/s (naive loops, bp_matmul, OpenBLAS if installed) and training-step times
#   make clean
#
# CC and CFLAGS are honoured: `make CC=clang`, `make CFLAGS=-O2`.  The default CFLAGS are the fast ones:
# -O3 -march=native -ffp-contract=fast.  -march=native lets the compiler use this machine's widest vectors;
# -ffp-contract=fast lets it fuse a*b+c into one FMA instruction, which gcc refuses in -std=c99 mode unless
# told.  Together they make bp_matmul about 5x faster than plain -O2 on an AVX-512 machine (see README).

CC ?= cc
CXX ?= c++
CFLAGS ?= -O3 -march=native -ffp-contract=fast
WARN = -std=c99 -Wall -Wextra -Wpedantic
LDLIBS = -lm

EXAMPLES = build/walkthrough build/train_xor

# OpenBLAS for the benchmark's comparison, when installed (apt-get install -y libopenblas-dev)
OPENBLAS := $(shell pkg-config --exists openblas 2>/dev/null && echo yes)
ifeq ($(OPENBLAS),yes)
BENCH_BLAS = -DBENCH_OPENBLAS $(shell pkg-config --cflags openblas)
BENCH_BLAS_LIBS = $(shell pkg-config --libs openblas)
endif

all: $(EXAMPLES)

build:
	mkdir -p build

build/%: examples/%.c backprop.h | build
	$(CC) $(WARN) $(CFLAGS) $< -o $@ $(LDLIBS)

run: build/walkthrough
	./build/walkthrough

test:
	CC="$(CC)" CXX="$(CXX)" sh tests/run.sh

sanitize:
	CC="$(CC)" CXX="$(CXX)" sh tests/run.sh sanitize

build/bench: tests/bench.c backprop.h | build
	$(CC) $(WARN) $(CFLAGS) $(BENCH_BLAS) $< -o $@ $(BENCH_BLAS_LIBS) $(LDLIBS)

build/bench_double: tests/bench.c backprop.h | build
	$(CC) $(WARN) $(CFLAGS) -DBACKPROP_DOUBLE $(BENCH_BLAS) $< -o $@ $(BENCH_BLAS_LIBS) $(LDLIBS)

# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, if the environment sets them, pin OpenBLAS to an older kernel:
# unset them so the comparison is against its best.
bench: build/bench build/bench_double
	@if [ "$(OPENBLAS)" != yes ]; then echo "(OpenBLAS not installed: apt-get install -y libopenblas-dev to compare)"; fi
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./build/bench
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ./build/bench_double

clean:
	rm -rf build

.PHONY: all run test sanitize bench clean
