/* Tests of the file functions: .npy (bp_tensor_load_npy, bp_tensor_save_npy, bp_failure_reason) and IDX
   (bp_idx_load, bp_idx_free).  Every file numpy wrote in tests/fixtures/npy/ (float32/float64, either
   byte order, C and Fortran order, 1-D, a 2.0 header) loads with numpy's exact values; each malformed
   file (empty, truncated, wrong magic, other dtypes, 0-D and 3-D, a huge shape, trailing bytes, a broken
   header) returns -1 with a telling bp_failure_reason(), an empty tensor, no handler call and no leak;
   the header parser rule by rule; bp_tensor_save_npy writes the same bytes as np.save, and save-then-load
   gives the same bits; IDX files good and malformed.  With -DBP_TEST_LARGE_FILES also a 3 GiB file
   (npy_load_large_file; make cross-test's Windows build).  Scratch files go to build/test/.
   Part of the suite: tests/test_backprop.c includes this file (see there how to run one test). */

#include "harness.h"

#ifndef BACKPROP_NO_STDIO /* the whole file: with BACKPROP_NO_STDIO the library has no file functions */

/* ---- .npy files: numpy's files load exactly, malformed ones are refused cleanly -------------------- */

/* The whole file in a malloc'd buffer (the test's own malloc, not the library's); NULL if unreadable. */
static unsigned char *slurp(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (*size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = (unsigned char *)malloc((size_t)*size + 1);
    if (buf && fread(buf, 1, (size_t)*size, f) != (size_t)*size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static int same_file_bytes(const char *a, const char *b)
{
    long na = -1, nb = -2;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, (size_t)na) == 0;
    if (!same) printf("  %s (%ld bytes) and %s (%ld bytes) differ\n", a, na, b, nb);
    free(x);
    free(y);
    return same;
}

/* tests/fixtures/npy/expected.txt: every good file, the values np.load reads from it */
static void test_npy_load(void)
{
    char path[512], line[4096], name[64];
    FILE *f = open_fixture("npy/expected.txt");
    int files = 0;
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        int rows, cols, i, ok = 1, rc;
        long mallocs = test_mallocs, frees = test_frees;
        bp_tensor t = {5, 5, NULL};
        if (line[0] == '#' || sscanf(line, "%63s %d %d", name, &rows, &cols) != 3) continue;
        snprintf(path, sizeof path, "%s/npy/%s", fixtures_dir, name);
        rc = bp_tensor_load_npy(&t, path);
        if (rc != 0) printf("  %s: %s\n", name, bp_failure_reason());
        ok = rc == 0 && t.rows == rows && t.cols == cols && (rows * cols == 0) == (t.data == NULL);
        ok &= bp_failure_reason()[0] == 0;
        for (i = 0; i < rows * cols; i++) {
            double v;
            bp_real want;
            if (fscanf(f, "%lf", &v) != 1) {
                ok = 0;
                break;
            }
            want = (bp_real)v; /* exact for a float32 file; a float build rounds float64 values like this */
            if (ok && memcmp(&t.data[i], &want, sizeof want) != 0) { /* bits: -0.0 must stay -0.0 */
                printf("  %s element %d: %.17g, numpy %.17g\n", name, i, (double)t.data[i], (double)want);
                ok = 0;
            }
        }
        if (!ok) printf("  %s failed\n", name);
        CHECK(ok);
        bp_tensor_free(&t);
        CHECK(test_mallocs - mallocs == test_frees - frees); /* the header buffer freed, the data ours */
        files++;
    }
    fclose(f);
    CHECK(files == 10);
    EXPECT_NO_ERROR();
}

static void test_npy_load_malformed(void)
{
    /* each malformed file (written by gen_fixtures.py) and a word its failure reason must contain */
    static const char *const bad[][2] = {
        {"empty.npy", "not a .npy"},                /* 0 bytes */
        {"truncated_data.npy", "truncated"},        /* 3x4 float64 less its last 4 bytes */
        {"truncated_header.npy", "truncated"},      /* the first 40 bytes of a file */
        {"bad_magic.npy", "not a .npy"},            /* \x93NUMPX */
        {"not_npy.npy", "not a .npy"},              /* a CSV file */
        {"int64.npy", "dtype '<i8'"},               /* np.save of an int64 array */
        {"f2.npy", "dtype '<f2'"},                  /* float16 */
        {"3d.npy", "3-D"},                          /* shape (2, 2, 2) */
        {"0d.npy", "0-D"},                          /* np.save(np.float64(3.0)): shape () */
        {"huge_shape.npy", "INT_MAX"},              /* claims (100000, 100000) */
#if SIZE_MAX > 0xffffffffu
        {"big_shape_no_data.npy", "truncated"},     /* claims (40000, 40000): refused before allocating */
#else /* 32-bit size_t: its 1.6e9 elements' bytes do not fit size_t, which is checked first */
        {"big_shape_no_data.npy", "size_t can count"},
#endif
        {"trailing.npy", "more bytes"},             /* 8 bytes after the data (the only one found after reading) */
        {"bad_dict.npy", "malformed"},              /* a comma missing in the header dict */
        {"not_dict.npy", "not a dict"},             /* descr=<f8 shape=3x4 */
        {"bad_version.npy", "version 4.0"},         /* format version 4.0 */
        {"missing_shape.npy", "lacks 'shape'"},     /* no 'shape' key */
        {"bad_fortran.npy", "fortran_order"},       /* 'fortran_order': 0 */
        {"negative_shape.npy", "shape"},            /* (-3, 4) */
        {"no_such_file.npy", "cannot open"},        /* not there at all */
        /* REGRESSION: an unknown key after 'shape' was reported as "key 'zzz' appears twice" */
        {"extra_key.npy", "unexpected key 'zzz'"},
    };
    char path[512];
    int k;
    for (k = 0; k < (int)(sizeof bad / sizeof *bad); k++) {
        bp_real sentinel = 7;
        bp_tensor t;
        long mallocs = test_mallocs, frees = test_frees;
        const char *reason;
        int rc, ok;
        t.rows = 7; /* whatever t held is overwritten, never freed */
        t.cols = 9;
        t.data = &sentinel;
        snprintf(path, sizeof path, "%s/npy/%s", fixtures_dir, bad[k][0]);
        rc = bp_tensor_load_npy(&t, path);
        reason = bp_failure_reason();
        ok = rc == -1 && t.data == NULL && t.rows == 0 && t.cols == 0 && errors_seen == 0;
        ok &= test_mallocs - mallocs == test_frees - frees; /* nothing leaked */
        if (strcmp(bad[k][0], "trailing.npy") != 0) ok &= test_mallocs - mallocs <= 1; /* the header only */
        ok &= strncmp(reason, "bp_tensor_load_npy: ", 20) == 0 && strstr(reason, path) != NULL &&
              strstr(reason, bad[k][1]) != NULL && !strchr(reason, '\n');
        if (!ok)
            printf("  %s: returned %d, t %dx%d, %d handler calls, %ld mallocs %ld frees, reason \"%s\" "
                   "(wanted \"%s\")\n",
                   bad[k][0], rc, t.rows, t.cols, errors_seen, test_mallocs - mallocs, test_frees - frees, reason,
                   bad[k][1]);
        CHECK(ok);
        errors_seen = 0;
    }

    /* bad arguments are programming errors: the handler */
    {
        bp_tensor t = {3, 3, NULL};
        CHECK(bp_tensor_load_npy(NULL, "x.npy") == -1);
        EXPECT_ERROR("bp_tensor_load_npy", "t is NULL");
        CHECK(bp_tensor_load_npy(&t, NULL) == -1);
        EXPECT_ERROR("bp_tensor_load_npy", "path is NULL");
        CHECK(t.rows == 0 && t.cols == 0 && t.data == NULL);
    }
}

/* Writes a .npy file by hand: magic, version major.0, the header length (2 bytes for 1.0, else 4), the
   header text as given (not padded: the loader does not insist on numpy's alignment), data_bytes bytes. */
static void write_npy(const char *path, int major, const char *header, size_t data_bytes)
{
    FILE *f = fopen(path, "wb");
    size_t n = strlen(header), i;
    if (!f) return;
    fwrite("\x93NUMPY", 1, 6, f);
    fputc(major, f);
    fputc(0, f);
    fputc((int)(n & 0xff), f);
    fputc((int)(n >> 8 & 0xff), f);
    if (major > 1) {
        fputc((int)(n >> 16 & 0xff), f);
        fputc((int)(n >> 24 & 0xff), f);
    }
    fwrite(header, 1, n, f);
    for (i = 0; i < data_bytes; i++) fputc(0x3f, f); /* float32 bytes 3f3f3f3f = 0.747..., float64 also finite */
    fclose(f);
}

/* The header parser, one rule at a time: headers numpy would not write but might (other quotes, no trailing
   comma, any whitespace) load; each kind of malformed header is refused with its own reason. */
static void test_npy_headers(void)
{
    static const struct {
        const char *header;
        int major;
        size_t data_bytes;
        const char *reason; /* NULL: must load, as rows x cols */
        int rows, cols;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", 1, 24, NULL, 2, 3}, /* no trailing comma */
        {"{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (3,), }\n", 1, 24, NULL, 1, 3},
        {"{ 'shape' :\t( 2 ,\n1 ) ,'fortran_order':True,'descr':'>f4' }", 3, 8, NULL, 2, 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", 1, 0, NULL, 1, 0},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (3, 0), }", 2, 0, NULL, 3, 0},
        {"{'descr': 5, 'fortran_order': False, 'shape': (2,), }", 1, 8, "descr is not a short string", 0, 0},
        {"{'descr': '<f4f4f4f4f4f4f4f4f4', 'fortran_order': False, 'shape': (2,), }", 1, 8, "descr is not", 0, 0},
        {"{'descr': '<f4", 1, 0, "descr is not a short string", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }", 1, 24, "not a tuple", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 1, 24, "shape tuple is malformed", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (,), }", 1, 0, "sizes from 0", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 1, 0, "sizes from 0", 0, 0},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 1, 8, "appears twice", 0, 0},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (2,), }", 1, 8, "dict is malformed", 0, 0},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }", 1, 8, "dict is malformed", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", 1, 8, "unexpected text after", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, }", 1, 8, "lacks 'shape'", 0, 0},
        {"{'fortran_order': False, 'shape': (2,), }", 1, 8, "lacks 'descr'", 0, 0},
        {"{'descr': '<f4', 'shape': (2,), }", 1, 8, "lacks 'fortran_order'", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), '\x7f\x01': 1}", 1, 8, "key '?" "?'", 0, 0}, /* control characters shown as ? */
    };
    const char *path = SCRATCH "/header.npy";
    int k;
    for (k = 0; k < (int)(sizeof cases / sizeof *cases); k++) {
        bp_tensor t = {0, 0, NULL};
        long mallocs = test_mallocs, frees = test_frees;
        int rc, ok;
        write_npy(path, cases[k].major, cases[k].header, cases[k].data_bytes);
        rc = bp_tensor_load_npy(&t, path);
        if (cases[k].reason)
            ok = rc == -1 && strstr(bp_failure_reason(), cases[k].reason) != NULL &&
                 !strchr(bp_failure_reason(), '\n') && t.data == NULL && t.rows == 0;
        else
            ok = rc == 0 && t.rows == cases[k].rows && t.cols == cases[k].cols;
        if (!ok)
            printf("  header %s: returned %d, %dx%d, \"%s\" (wanted %s)\n", cases[k].header, rc, t.rows, t.cols,
                   bp_failure_reason(), cases[k].reason ? cases[k].reason : "success");
        CHECK(ok);
        bp_tensor_free(&t);
        CHECK(test_mallocs - mallocs == test_frees - frees);
    }
    /* the fixed part of the file */
    {
        FILE *f = fopen(path, "wb");
        bp_tensor t = {0, 0, NULL};
        if (f) {
            fwrite("\x93NUMPY\x02\x00\x10\x00\x00", 1, 11, f); /* 2.0 needs 4 length bytes: only 3 */
            fclose(f);
        }
        CHECK(bp_tensor_load_npy(&t, path) == -1 && strstr(bp_failure_reason(), "truncated in the header"));
        f = fopen(path, "wb");
        if (f) {
            fwrite("\x93NUMPY\x02\x00\x71\x11\x01\x00", 1, 12, f); /* a header of 70001 bytes */
            fclose(f);
        }
        CHECK(bp_tensor_load_npy(&t, path) == -1 && strstr(bp_failure_reason(), "more than 65536"));
        f = fopen(path, "wb");
        if (f) {
            fwrite("\x93NUMPY\x01\x01\x10\x00", 1, 10, f); /* version 1.1 does not exist */
            fclose(f);
        }
        CHECK(bp_tensor_load_npy(&t, path) == -1 && strstr(bp_failure_reason(), "version 1.1"));
    }
    EXPECT_NO_ERROR();
    remove(path);
}

#ifdef BP_TEST_LARGE_FILES
/* REGRESSION (Windows, where long is 32 bits): ftell failed past 2 GiB, so the size check was skipped and a
   3 GiB file whose header claims 40000x40000 doubles was allocated (6.4 GB) and read before it was found
   truncated.  Needs sparse files, or it writes 3 GiB: make cross-test defines this for its Windows build,
   which runs under wine on Linux. */
static void test_npy_load_large_file(void)
{
    const char *big = SCRATCH "/big_3gib.npy";
    char path[512];
    unsigned char header[128];
    size_t header_len;
    long mallocs = test_mallocs, frees = test_frees;
    bp_tensor t = {0, 0, NULL};
    FILE *in, *out;
    int ok;
    snprintf(path, sizeof path, "%s/npy/big_shape_no_data.npy", fixtures_dir);
    in = fopen(path, "rb");
    out = fopen(big, "wb");
    CHECK(in && out);
    if (!in || !out) return;
    header_len = fread(header, 1, sizeof header, in);
    fclose(in);
#ifdef _WIN32
    ok = fwrite(header, 1, header_len, out) == header_len && _fseeki64(out, (3LL << 30) - 1, SEEK_SET) == 0;
#else
    ok = fwrite(header, 1, header_len, out) == header_len && fseek(out, (long)((3LL << 30) - 1), SEEK_SET) == 0;
#endif
    ok &= fputc(0, out) != EOF;
    ok &= fclose(out) == 0;
    CHECK(ok);
    CHECK(bp_tensor_load_npy(&t, big) == -1 && t.data == NULL);
    CHECK(strstr(bp_failure_reason(), "truncated: the header says 40000x40000 float64") != NULL);
    if (!strstr(bp_failure_reason(), "header says")) printf("  %s\n", bp_failure_reason());
    CHECK(test_mallocs - mallocs <= 1 && test_mallocs - mallocs == test_frees - frees); /* the header only */
    CHECK(errors_seen == 0);
    remove(big);
}
#endif

/* Is there no file at path? */
static int fopen_fails(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f == NULL;
}

static void test_npy_save(void)
{
    const char *roundtrip = SCRATCH "/roundtrip.npy";
    char path[512];
    bp_rng rng;
    long mallocs, frees;
    int shape, ok;
    bp_rng_seed(&rng, 61);

    /* save, load: the same bits, for several shapes, with -0, infinity and the smallest subnormal */
    for (shape = 0; shape < 4; shape++) {
        const int shapes[][2] = {{1, 1}, {1, 7}, {0, 4}, {3, 5}};
        bp_tensor t = bp_tensor_new(shapes[shape][0], shapes[shape][1]), back = {0, 0, NULL};
        int n = shapes[shape][0] * shapes[shape][1];
        bp_tensor_randn(&t, &rng, 1);
        if (n >= 7) {
            t.data[1] = -(bp_real)0.0;
            t.data[2] = (bp_real)HUGE_VAL;
            t.data[3] = -(bp_real)HUGE_VAL;
            t.data[4] = sizeof(bp_real) == 8 ? (bp_real)4.9406564584124654e-324 : (bp_real)1.4012984643e-45;
            t.data[5] = sizeof(bp_real) == 8 ? (bp_real)DBL_MAX : (bp_real)FLT_MAX;
        }
        mallocs = test_mallocs;
        frees = test_frees;
        ok = bp_tensor_save_npy(&t, roundtrip) == 0 && bp_failure_reason()[0] == 0;
        ok &= test_mallocs - mallocs == 1 && test_frees - frees == 1; /* only the name of path.part */
        ok &= fopen_fails(SCRATCH "/roundtrip.npy.part");               /* renamed away */
        ok &= bp_tensor_load_npy(&back, roundtrip) == 0 && same_bits(&back, &t);
        if (!ok) printf("  round trip %dx%d: %s\n", t.rows, t.cols, bp_failure_reason());
        CHECK(ok);
        bp_tensor_free(&t);
        bp_tensor_free(&back);
    }
    /* (the last one, 3x5 with -0, +-inf, the smallest subnormal and the largest finite value, stays in
       build/test/roundtrip.npy: np.load reads it, the same values) */
    EXPECT_NO_ERROR();

    /* saving over an existing file replaces it */
    {
        bp_tensor a = bp_tensor_new(2, 3), b = bp_tensor_new(4, 1), back = {0, 0, NULL};
        const char *twice = SCRATCH "/saved_twice.npy";
        fill(&a, 1);
        fill(&b, 2);
        CHECK(bp_tensor_save_npy(&a, twice) == 0 && bp_tensor_save_npy(&b, twice) == 0);
        CHECK(bp_tensor_load_npy(&back, twice) == 0 && back.rows == 4 && back.cols == 1 && all_equal(&back, 2));
        remove(twice);
        bp_tensor_free(&a);
        bp_tensor_free(&b);
        bp_tensor_free(&back);
    }

    /* the bytes numpy writes for the same array: tests/fixtures/npy/f4_c.npy (2x3) or f8_c.npy (3x4),
       written by np.save; in the float build also the empty 0x3 float32 file */
    {
        static const char *const same_as_numpy[] = {
#ifdef BACKPROP_DOUBLE
            "f8_c.npy",
#else
            "f4_c.npy", "f4_empty.npy",
#endif
        };
        int k;
        for (k = 0; k < (int)(sizeof same_as_numpy / sizeof *same_as_numpy); k++) {
            char mine[512];
            bp_tensor t = {0, 0, NULL};
            snprintf(path, sizeof path, "%s/npy/%s", fixtures_dir, same_as_numpy[k]);
            snprintf(mine, sizeof mine, SCRATCH "/saved_%s", same_as_numpy[k]);
            ok = bp_tensor_load_npy(&t, path) == 0 && bp_tensor_save_npy(&t, mine) == 0;
            CHECK(ok);
            CHECK(ok && same_file_bytes(mine, path));
            remove(mine);
            bp_tensor_free(&t);
        }
    }

    /* failures: a file problem returns -1 with a reason; bad arguments call the handler */
    {
        const char *unwritable = SCRATCH "/no_such_directory/x.npy";
        bp_tensor t = bp_tensor_new(2, 2), unallocated = {2, 2, NULL};
        fill(&t, 1);
        CHECK(bp_tensor_save_npy(&t, unwritable) == -1);
        CHECK(errors_seen == 0); /* a file problem is not a programming error: no handler */
        CHECK(strncmp(bp_failure_reason(), "bp_tensor_save_npy: ", 20) == 0 &&
              strstr(bp_failure_reason(), unwritable) != NULL && strstr(bp_failure_reason(), "cannot open") != NULL);
        CHECK(fopen_fails(unwritable));
        /* the rename fails: the path is a folder (build/test itself); the .part file is removed again */
        CHECK(bp_tensor_save_npy(&t, SCRATCH) == -1 && strstr(bp_failure_reason(), "cannot rename") != NULL);
        CHECK(errors_seen == 0 && fopen_fails(SCRATCH ".part"));
        CHECK(bp_tensor_save_npy(NULL, roundtrip) == -1);
        EXPECT_ERROR("bp_tensor_save_npy", "t is NULL");
        CHECK(bp_tensor_save_npy(&t, NULL) == -1);
        EXPECT_ERROR("bp_tensor_save_npy", "path is NULL", "2x2");
        CHECK(bp_tensor_save_npy(&unallocated, roundtrip) == -1);
        EXPECT_ERROR("bp_tensor_save_npy", "t is 2x2", "NULL");
        bp_tensor_free(&t);
    }
    /* the failure reason is cleared by the next success */
    {
        bp_tensor t = {0, 0, NULL};
        snprintf(path, sizeof path, "%s/npy/f8_c.npy", fixtures_dir);
        CHECK(bp_failure_reason()[0] != 0);
        CHECK(bp_tensor_load_npy(&t, path) == 0 && bp_failure_reason()[0] == 0);
        bp_tensor_free(&t);
    }
}

/* ---- IDX files ------------------------------------------------------------------------------------ */

static void test_idx(void)
{
    const char *path = SCRATCH "/test.idx";
    unsigned char bytes[64];
    bp_idx idx;
    int i;
    for (i = 0; i < 64; i++) bytes[i] = (unsigned char)(i * 37 + 1);

    /* good files: 3-D images, 1-D labels, 2-D, and an empty one */
    {
        const unsigned long images[] = {2, 3, 4}, labels[] = {5}, matrix[] = {3, 7}, empty[] = {0, 28, 28};
        long mallocs = test_mallocs;
        write_idx(path, 0x08, 3, images, bytes, 24);
        CHECK(bp_idx_load(&idx, path) == 0 && bp_failure_reason()[0] == 0);
        CHECK(idx.ndim == 3 && idx.dims[0] == 2 && idx.dims[1] == 3 && idx.dims[2] == 4);
        CHECK(idx.data && memcmp(idx.data, bytes, 24) == 0); /* row-major, byte for byte */
        CHECK(test_mallocs - mallocs == 1);
        bp_idx_free(&idx);
        CHECK(idx.data == NULL);
        bp_idx_free(&idx); /* twice is harmless */
        bp_idx_free(NULL);
        write_idx(path, 0x08, 1, labels, bytes, 5);
        CHECK(bp_idx_load(&idx, path) == 0 && idx.ndim == 1 && idx.dims[0] == 5 && idx.dims[1] == 1 &&
              idx.dims[2] == 1 && memcmp(idx.data, bytes, 5) == 0);
        bp_idx_free(&idx);
        write_idx(path, 0x08, 2, matrix, bytes, 21);
        CHECK(bp_idx_load(&idx, path) == 0 && idx.ndim == 2 && idx.dims[0] == 3 && idx.dims[1] == 7 &&
              idx.dims[2] == 1 && memcmp(idx.data, bytes, 21) == 0);
        bp_idx_free(&idx);
        mallocs = test_mallocs;
        write_idx(path, 0x08, 3, empty, NULL, 0);
        CHECK(bp_idx_load(&idx, path) == 0 && idx.ndim == 3 && idx.dims[0] == 0 && idx.dims[1] == 28 &&
              idx.data == NULL && test_mallocs == mallocs); /* nothing to allocate */
        bp_idx_free(&idx);
        EXPECT_NO_ERROR();
    }

    /* bad files: -1, idx zeroed, one line naming the function, the file and the problem; no handler call,
       nothing leaked, nothing allocated before the sizes are known to match the file */
    {
        static const unsigned long big[] = {2147483648UL}, product[] = {65536, 65536, 1}, mnist[] = {60000, 28, 28},
                                   two[] = {2, 3}, five[] = {5}, four[] = {1, 1, 1, 1};
        static const struct {
            const char *what, *reason;
            int type, ndim, raw_size;          /* raw_size >= 0: write only the first raw_size bytes of raw */
            const unsigned long *sizes;
            size_t data;                       /* data bytes after the header */
            unsigned char raw[8];
        } bad[] = {
            {"empty file", "truncated", 0, 0, 0, NULL, 0, {0}},
            {"3 bytes", "truncated", 0, 0, 3, NULL, 0, {0, 0, 8}},
            {"gzip", "gzip", 0, 0, 8, NULL, 0, {0x1f, 0x8b, 8, 0, 0, 0, 0, 0}},
            {"not IDX (text)", "not an IDX file", 0, 0, 8, NULL, 0, {'h', 'e', 'l', 'l', 'o', '!', '\n', 0}},
            {"int32 values", "type 0x0c", 0x0c, 1, -1, five, 20, {0}},
            {"float values", "type 0x0d", 0x0d, 1, -1, five, 20, {0}},
            {"no sizes", "0 sizes", 0x08, 0, -1, NULL, 4, {0}},
            {"4 sizes", "4 sizes", 0x08, 4, -1, four, 1, {0}},
            {"header cut short", "truncated in the header", 0, 0, 7, NULL, 0, {0, 0, 8, 2, 0, 0, 0}},
            {"size above INT_MAX", "INT_MAX", 0x08, 1, -1, big, 0, {0}},
            {"product above INT_MAX", "INT_MAX", 0x08, 3, -1, product, 0, {0}},
            {"MNIST's header, no data", "truncated", 0x08, 3, -1, mnist, 50, {0}},
            {"data cut short", "truncated", 0x08, 2, -1, two, 5, {0}},
            {"bytes after the data", "more bytes", 0x08, 2, -1, two, 7, {0}},
        };
        int k;
        for (k = 0; k < (int)(sizeof bad / sizeof *bad); k++) {
            long mallocs = test_mallocs;
            const char *reason;
            int rc, ok;
            if (bad[k].raw_size >= 0) {
                FILE *f = fopen(path, "wb");
                if (f) {
                    fwrite(bad[k].raw, 1, (size_t)bad[k].raw_size, f);
                    fclose(f);
                }
            } else {
                write_idx(path, bad[k].type, bad[k].ndim, bad[k].sizes, bytes, bad[k].data);
            }
            idx.ndim = 3; /* garbage: overwritten */
            idx.data = bytes;
            rc = bp_idx_load(&idx, path);
            reason = bp_failure_reason();
            ok = rc == -1 && idx.ndim == 0 && idx.dims[0] == 0 && idx.data == NULL && errors_seen == 0;
            ok &= test_mallocs == mallocs; /* refused before allocating */
            ok &= strncmp(reason, "bp_idx_load: ", 13) == 0 && strstr(reason, path) != NULL &&
                  strstr(reason, bad[k].reason) != NULL && !strchr(reason, '\n');
            if (!ok)
                printf("  %s: returned %d, ndim %d, %d handler calls, reason \"%s\" (wanted \"%s\")\n", bad[k].what,
                       rc, idx.ndim, errors_seen, reason, bad[k].reason);
            CHECK(ok);
            errors_seen = 0;
        }
        CHECK(bp_idx_load(&idx, SCRATCH "/no_such_file.idx") == -1 && strstr(bp_failure_reason(), "cannot open"));
        CHECK(errors_seen == 0);
    }

    /* bad arguments are programming errors: the handler */
    CHECK(bp_idx_load(NULL, path) == -1);
    EXPECT_ERROR("bp_idx_load", "idx is NULL");
    idx.ndim = 2;
    CHECK(bp_idx_load(&idx, NULL) == -1);
    EXPECT_ERROR("bp_idx_load", "path is NULL");
    CHECK(idx.ndim == 0 && idx.data == NULL);
    remove(path);
}

#endif /* BACKPROP_NO_STDIO */
