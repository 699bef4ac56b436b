#!/bin/sh
# make coursework: the copy recipe of README.md ("Copying into coursework"), followed mechanically.
#
# For each function a student may copy, it takes from backprop.h exactly the lines the recipe names:
#   the type      #include <math.h>, and bp_real and struct bp_tensor (from "#ifdef BACKPROP_DOUBLE" to
#                 "} bp_tensor;");
#   the flags     the three lines "#define BP_TRANS_A 1", "... BP_TRANS_B 2", "... BP_ACCUMULATE 4" (for products);
#   the window    the line "typedef struct bp_window ..." (for the convolution and max-pooling);
#   the bits      the lines "#include <stdint.h>" and "#include <string.h>" (for bp__exp and bp__sqrt, which
#                 the activations, the softmax and Adam call);
#   the rng       for dropout: "#include <stdint.h>", struct bp_rng (from "typedef struct bp_rng {" to
#                 "} bp_rng;") and the declaration of bp_rng_uniform (the library's, linked in);
#   a function    bp__NAME, from the comment block directly above it to its closing "}";
# and adds at most the glue lines the recipe names (two: "#define bp__matmul bp__matmul_reference", so that
# the copied Linear layer calls the copied reference matmul instead of the fast one; and, with the rng,
# "#define BPDEF extern", the word backprop.h starts its declarations with).  That is build/coursework/NAME.c, with the
# main of tests/coursework_mains.c appended (section "common", then section NAME).  The file does not
# include backprop.h.  It is compiled ALONE with cc -std=c99 -Wall -Wextra -Wpedantic -Werror, linked with
# an object of the library only so that its main can call the library's function too, and run: the
# copied function and the library's must agree on the same inputs, to rounding.
#
# One line per function: ok/FAIL, the name, the lines copied (not counting the type, which every copy
# shares), the bound.  Bounds: linear (forward + backward, the bias add and column sums they call, and the
# reference matmul) 65 lines; conv2d (im2col, col2im, forward, backward and the reference matmul) 110; the
# reference matmul alone 25; Adam with its square root 50, RMSprop with it 50; sigmoid and tanh forward
# with bp__exp 45, the softmax forward with it and the row maximum and sum 95 (it works 16 rows at a time,
# so that its e^ loop vectorises, and in 8 lanes along a long row); clipping with its sum of squares 35;
# the norms' forwards and the running statistics (with the two-pass mean and variance, bp__moments) 45;
# the norms' backwards (derivations included) 35; the gradient check, the max-pooling forward and dropout's
# forward (with the rng) 25; every other function 20.  Every line of each file before its main is checked
# to be a line of backprop.h, verbatim, except the glue.  The last line is `N passed, M failed`.

CC=${CC:-cc}
B=build/coursework
H=backprop.h
STRICT="-std=c99 -Wall -Wextra -Wpedantic -Werror"
GLUE="#define bp__matmul bp__matmul_reference"
GLUE_RNG="#define BPDEF extern"
mkdir -p "$B" || exit 1
passed=0
failed=0

# the lines of H for one part of the recipe: type, flags, or the name of a math function
extract() {
    case $1 in
    type) awk '/^#include <math.h>/ && !m { print; m = 1 }
               /^#ifdef BACKPROP_DOUBLE$/ && !t { t = 1 }
               t == 1 { print } /^} bp_tensor;$/ && t == 1 { t = 2 }' "$H" ;;
    flags) grep -E '^#define (BP_TRANS_A 1|BP_TRANS_B 2|BP_ACCUMULATE 4)$' "$H" ;;
    window) grep -E '^typedef struct bp_window ' "$H" ;;
    bits) grep -E '^#include <(stdint|string)\.h>' "$H" ;;
    glue) echo "$GLUE" ;;
    rng) grep -x -F '#include <stdint.h> /* uint64_t */' "$H"
         echo "$GLUE_RNG"
         awk '/^typedef struct bp_rng \{$/ { t = 1 } t { print } /^} bp_rng;$/ { t = 0 }' "$H"
         grep -E '^BPDEF double bp_rng_uniform\(bp_rng \*rng\);' "$H" ;;
    *) awk -v name="$1" '
        { line[NR] = $0 }
        END {
            for (i = 1; i <= NR; i++)
                if (index(line[i], "static ") == 1 && index(line[i], " " name "(") > 0 && line[i] !~ /;$/) break
            if (i > NR) exit 1
            start = i
            if (line[i - 1] ~ /\*\/$/) for (start = i - 1; start > 1 && line[start] !~ /^\/\*/; start--) continue
            for (end = i; end <= NR && line[end] != "}"; end++) continue
            for (k = start; k <= end; k++) print line[k]
        }' "$H" ;;
    esac
}

# the section NAME of the mains file: from the line "/* == NAME == */" to the next such line
section() {
    awk -v name="$1" '/^\/\* == [a-z0-9_]+ == \*\/$/ { on = ($0 == "/* == " name " == */"); next } on' tests/coursework_mains.c
}

if ! $CC -std=c99 -O2 -c tests/dropin/impl.c -o "$B/library.o" 2>"$B/library.log"; then
    cat "$B/library.log"
    echo "FAIL  the library does not compile"
    echo "0 passed, 1 failed"
    exit 1
fi

# coursework NAME BOUND PARTS... : one copy, compiled, run and compared
coursework() {
    name=$1 bound=$2
    shift 2
    file="$B/$name.c"
    : >"$file"
    copied=0
    for part in type "$@"; do
        if ! extract "$part" >"$B/part.txt" || [ ! -s "$B/part.txt" ]; then
            echo "FAIL  $name: no $part in $H"
            failed=$((failed + 1))
            return
        fi
        cat "$B/part.txt" >>"$file"
        [ "$part" = type ] || [ "$part" = glue ] ||
            copied=$((copied + $(grep -v -x -F -e "$GLUE_RNG" "$B/part.txt" | wc -l)))
    done
    # every line so far is a line of backprop.h, verbatim (or the glue)
    foreign=$(grep -v -x -F -f "$H" "$file" | grep -v -x -F -e "$GLUE" -e "$GLUE_RNG")
    section common >>"$file"
    section "$name" >>"$file"
    if [ -n "$foreign" ]; then
        echo "FAIL  $name: lines not from $H: $foreign"
        failed=$((failed + 1))
    elif ! $CC $STRICT -O2 -c "$file" -o "$B/$name.o" 2>"$B/$name.log" ||
        ! $CC "$B/$name.o" "$B/library.o" -o "$B/$name" -lm 2>>"$B/$name.log"; then
        cat "$B/$name.log"
        echo "FAIL  $name: the copy does not compile alone ($CC $STRICT)"
        failed=$((failed + 1))
    elif ! "$B/$name" >"$B/$name.out" 2>&1; then
        cat "$B/$name.out"
        echo "FAIL  $name: the copy and the library disagree"
        failed=$((failed + 1))
    elif [ "$copied" -gt "$bound" ]; then
        echo "FAIL  $name: $copied lines copied, more than $bound"
        failed=$((failed + 1))
    else
        printf 'ok    %-22s %3d lines copied (at most %d), %s\n' "$name" "$copied" "$bound" "$(tail -n 1 "$B/$name.out")"
        passed=$((passed + 1))
    fi
}

coursework matmul_reference 25 flags bp__matmul_reference
coursework linear 65 flags bp__matmul_reference glue bp__add_bias bp__linear_forward bp__column_sums bp__linear_backward
for f in relu_forward relu_backward sigmoid_backward tanh_backward mse_forward mse_backward softmax_xent_backward \
    sgd_step momentum_step; do
    coursework $f 20 bp__$f
done
coursework conv2d 110 flags window bp__matmul_reference glue bp__im2col bp__conv2d_forward bp__col2im bp__conv2d_backward
coursework maxpool2d_forward 25 window bp__maxpool2d_forward
coursework maxpool2d_backward 20 window bp__maxpool2d_backward
for f in sigmoid_forward tanh_forward; do
    coursework $f 45 bits bp__exp bp__$f
done
coursework softmax_xent_forward 95 bits bp__exp bp__row_max bp__row_sum bp__softmax_xent_forward
coursework adam_step 50 bits bp__sqrt bp__adam_step
coursework clip_grad_norm 35 bp__sum_squares bp__clip_grad_norm
coursework gradcheck 25 bp__gradcheck
coursework layernorm_forward 45 bp__moments bp__layernorm_forward
coursework layernorm_backward 35 bp__layernorm_backward
coursework batchnorm_forward 45 bp__moments bp__batchnorm_forward
coursework batchnorm_backward 35 bp__batchnorm_backward
coursework batchnorm_update_running 45 bp__moments bp__batchnorm_update_running
for f in batchnorm_inference dropout_backward; do
    coursework $f 20 bp__$f
done
coursework rmsprop_step 50 bits bp__sqrt bp__rmsprop_step
coursework dropout_forward 25 rng bp__dropout_forward
echo "(the type every copy starts with: $(extract type | wc -l) lines; the files are in $B/)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
