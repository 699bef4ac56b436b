#!/bin/sh
# tests/openblas_core.sh BENCH: prints the OPENBLAS_CORETYPE under which OpenBLAS multiplies fastest on
# this machine, measured (BENCH --openblas-probe, one process per kernel: OpenBLAS reads the variable when
# it loads).  make bench pins OpenBLAS, and PyTorch, to it.  Why: OpenBLAS 0.3.21 does not know every CPU;
# on Intel Emerald Rapids it picks its SSE3 "Prescott" kernel, 4x slower than its AVX-512 SkylakeX one,
# and a comparison against that would be fiction.  Prints nothing if no kernel runs.
best="" best_rate=0
for core in "" SkylakeX Cooperlake Haswell Zen; do
    line=$(OPENBLAS_CORETYPE=$core "$1" --openblas-probe 2>/dev/null) || continue
    rate=${line%% *} name=${line#* }
    echo "openblas_core.sh: OPENBLAS_CORETYPE=${core:-(unset)}: $name kernel, $rate GFLOP/s" >&2
    if awk -v r="$rate" -v b="$best_rate" 'BEGIN { exit !(r > b) }'; then best=$name best_rate=$rate; fi
done
echo "$best"
