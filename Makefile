# backprop.h: build the examples, run the tests, run the benchmark.
#
#   make            build the examples into build/
#   make run        build and run the walkthrough (the textbook example, checked against finite differences)
#   make test       the test suite in every build we promise (C99, C++, float/double, gcc/clang/tcc, ...),
#                   the drop-in checks, the examples and make coursework (tests/README.md says what each checks)
#   make sanitize   the test suite and examples under AddressSanitizer + UndefinedBehaviorSanitizer
#   make cross-test the suite and quick examples on aarch64 (NEON) and big-endian s390x under qemu, 32-bit
#                   x86 and Windows (mingw-w64 + wine); a target whose toolchain is missing is skipped
#   make coursework the README's copy recipe, done mechanically: each copyable function's lines out of
#                   backprop.h into build/coursework/NAME.c, compiled alone, compared with the library
#                   (make test runs it too)
#   make bench      matmul GFLOP/s (naive loops, bp_matmul, OpenBLAS if installed, pinned to its fastest
#                   kernel here) and training-step times (and PyTorch's, if installed); every elementwise
#                   pass in GB/s beside a triad loop; the Fashion-MNIST network against PyTorch; a tiny network
#                   (4-4-3, one sample per step) against genann's loops in plain C
#   make fashion    train an MLP on Fashion-MNIST (apt-get install -y dataset-fashion-mnist; or DATA=dir
#                   of MNIST-format IDX files, gzipped or not)
#   make fashion-cnn train a small CNN (conv-pool-conv-pool-linear) on Fashion-MNIST: >= 0.91 test accuracy
#   make vanishing  gradient norms per layer through deep sigmoid/tanh/ReLU/residual/normalised stacks; clipping
#   make modes      the full gradient by reverse mode (backprop) vs forward mode (JVPs): the cost ratio
#   make checkpoint gradient checkpointing: activation memory vs recomputation
#   make iris       genann's Iris example with the network in one object (bp_mlp_*)
#   make from_pytorch  an MLP trained in PyTorch (examples/from_pytorch) run here: the same outputs
#   make fuzz       libFuzzer on the .npy, IDX and .npz readers, FUZZ_SECONDS each (default 60; needs clang)
#   make coverage   the suite under gcov: lines and branches of backprop.h executed (targets 95% / 85%)
#   make valgrind   the suite (float and double) and the quick examples under valgrind's memcheck
#   make tsan       the suite under ThreadSanitizer, plain (its threaded tests) and with OpenMP (needs clang)
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

EXAMPLES = build/walkthrough build/train_xor build/fashion_mnist build/vanishing_gradients \
           build/forward_vs_reverse build/checkpointing build/fashion_cnn build/iris_mlp build/run_mlp build/run_cnn

# OpenBLAS for the benchmark's comparison, when installed (apt-get install -y libopenblas-dev)
OPENBLAS := $(shell pkg-config --exists openblas 2>/dev/null && echo yes)
ifeq ($(OPENBLAS),yes)
BENCH_BLAS = -DBENCH_OPENBLAS $(shell pkg-config --cflags openblas)
BENCH_BLAS_LIBS = $(shell pkg-config --libs openblas)
endif

all: $(EXAMPLES)

build:
	mkdir -p build

build/%: examples/%.c examples/chart.h backprop.h | build
	$(CC) $(WARN) $(CFLAGS) $< -o $@ $(LDLIBS)

run: build/walkthrough
	./build/walkthrough

# PyTorch to C: examples/from_pytorch/export.py trained an nn.Sequential and saved it (committed .npz files);
# run_mlp (an MLP) and run_cnn (a CNN) run them here and compare with PyTorch's outputs
build/run_mlp: examples/from_pytorch/run_mlp.c backprop.h | build
	$(CC) $(WARN) $(CFLAGS) $< -o $@ $(LDLIBS)

build/run_cnn: examples/from_pytorch/run_cnn.c backprop.h | build
	$(CC) $(WARN) $(CFLAGS) $< -o $@ $(LDLIBS)

from_pytorch: build/run_mlp build/run_cnn
	./build/run_mlp
	./build/run_cnn

iris: build/iris_mlp
	./build/iris_mlp

# Fashion-MNIST: Debian's dataset-fashion-mnist ships gzipped IDX files; they are unpacked once with gunzip
# into examples/data/ (git-ignored), so the C code needs no zlib.  DATA=dir uses another folder of
# MNIST-format files instead (train-images-idx3-ubyte, ... gzipped or not), e.g. the original MNIST.
DATA ?= /usr/share/datasets/fashion-mnist
DATA_DIR = examples/data/$(notdir $(DATA))
IDX = train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte

$(DATA_DIR)/%: | $(DATA)
	@mkdir -p $(DATA_DIR)
	@if [ -f "$(DATA)/$*" ]; then cp "$(DATA)/$*" $@; \
	elif [ -f "$(DATA)/$*.gz" ]; then gunzip -c "$(DATA)/$*.gz" > $@.tmp && mv $@.tmp $@; \
	else echo "make fashion: no $(DATA)/$* or $*.gz; apt-get install -y dataset-fashion-mnist, or DATA=dir"; exit 1; fi

$(DATA):
	@echo "make fashion: $(DATA) does not exist.  apt-get install -y dataset-fashion-mnist, or DATA=dir"; exit 1

fashion: build/fashion_mnist $(addprefix $(DATA_DIR)/,$(IDX))
	./build/fashion_mnist $(DATA_DIR)

# The CNN (examples/fashion_cnn.c): about 2 minutes on one core; fails below 0.91 test accuracy
fashion-cnn: build/fashion_cnn $(addprefix $(DATA_DIR)/,$(IDX))
	./build/fashion_cnn $(DATA_DIR)

vanishing: build/vanishing_gradients
	./build/vanishing_gradients

modes: build/forward_vs_reverse
	./build/forward_vs_reverse

checkpoint: build/checkpointing
	./build/checkpointing

test:
	CC="$(CC)" CXX="$(CXX)" sh tests/run.sh

# The suite alone, to run one test by name: make build/test/suite && build/test/suite linear_by_hand
build/test/suite: tests/test_backprop.c tests/harness.h tests/test_*.c backprop.h
	@mkdir -p build/test
	$(CC) $(WARN) -O2 tests/test_backprop.c -o $@ $(LDLIBS)

sanitize:
	CC="$(CC)" CXX="$(CXX)" sh tests/run.sh sanitize

valgrind:
	CC="$(CC)" CXX="$(CXX)" sh tests/run.sh valgrind

tsan:
	sh tests/tsan.sh

FUZZ_SECONDS ?= 60
fuzz:
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

coverage:
	sh tests/coverage.sh

cross-test:
	sh tests/cross.sh

coursework:
	CC="$(CC)" sh tests/coursework.sh

build/bench: tests/bench.c backprop.h | build
	$(CC) $(WARN) $(CFLAGS) $(BENCH_BLAS) $< -o $@ $(BENCH_BLAS_LIBS) $(LDLIBS)

build/bench_double: tests/bench.c backprop.h | build
	$(CC) $(WARN) $(CFLAGS) -DBACKPROP_DOUBLE $(BENCH_BLAS) $< -o $@ $(BENCH_BLAS_LIBS) $(LDLIBS)

# The same with OpenMP, for the 1- vs 2-thread table (skipped if the compiler has no OpenMP)
build/bench_omp: tests/bench.c backprop.h | build
	-$(CC) $(WARN) $(CFLAGS) -fopenmp $< -o $@ $(LDLIBS)

# OpenBLAS 0.3.21 does not know every CPU (on Intel Emerald Rapids it runs its SSE3 "Prescott" kernel, 4x
# slower than its AVX-512 one, and PyTorch inherits that): tests/openblas_core.sh times its kernels here and
# OpenBLAS and PyTorch run pinned to the fastest (OPENBLAS_CORETYPE; OPENBLAS_L2_SIZE unset).  The OpenMP
# table runs twice: OMP_WAIT_POLICY=active (idle threads spin: fastest on an otherwise idle machine) and
# passive (they sleep: costs a wake-up per parallel block, but spinning threads on a busy machine can slow
# everything down many times).
PIN_OPENBLAS = env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=$$(cat build/openblas_core.txt)
bench: build/bench build/bench_double build/bench_omp
	@if [ "$(OPENBLAS)" != yes ]; then echo "(OpenBLAS not installed: apt-get install -y libopenblas-dev to compare)"; : >build/openblas_core.txt; \
	else sh tests/openblas_core.sh build/bench >build/openblas_core.txt; fi
	@# PyTorch's time for the same training step, when Debian's python3-torch is installed (checked here,
	@# not when the Makefile is read: importing torch takes a second)
	@if /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then \
	OMP_NUM_THREADS=1 $(PIN_OPENBLAS) /usr/bin/python3 tests/bench_torch.py > build/torch.txt; \
	else echo "(PyTorch not installed: apt-get install -y python3-torch to compare)"; rm -f build/torch.txt; fi
	$(PIN_OPENBLAS) ./build/bench $$([ -s build/torch.txt ] && echo --torch build/torch.txt)
	./build/bench --train-only
	@if [ -x build/bench_omp ]; then echo "== OMP_WAIT_POLICY=active"; OMP_WAIT_POLICY=active ./build/bench_omp --threads-only; \
	echo "== OMP_WAIT_POLICY=passive"; OMP_WAIT_POLICY=passive ./build/bench_omp --threads-only | tail -n 6; \
	else echo "(no OpenMP build: $(CC) -fopenmp failed)"; fi
	$(PIN_OPENBLAS) ./build/bench_double

clean:
	rm -rf build

.PHONY: all run test sanitize valgrind tsan fuzz coverage cross-test coursework bench clean fashion fashion-cnn vanishing \
        modes checkpoint from_pytorch iris
