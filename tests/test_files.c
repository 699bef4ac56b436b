/* Tests of the file functions: .npy (bp_tensor_load_npy, bp_tensor_save_npy, bp_failure_reason), .npz and
   IDX (bp_idx_load, bp_idx_free).  Every file numpy wrote in tests/fixtures/npy/ (float32/float64, either
   byte order, C and Fortran order, 1-D, a 2.0 header) loads with numpy's exact values; each malformed
   file (empty, truncated, wrong magic, other dtypes, 0-D and 3-D, a huge shape, trailing bytes, a broken
   header) returns -1 with a telling bp_failure_reason(), an empty tensor, no handler call and no leak;
   the header parser rule by rule; bp_tensor_save_npy writes the same bytes as np.save, and save-then-load
   gives the same bits; .npz archives (bp_npz_save, bp_npz_load, bp_npz_list): np.savez's files in
   tests/fixtures/npz/ load bit for bit and list as numpy sees them, each malformed archive is refused by
   both readers with its reason, bp_npz_save writes the bytes Python's zipfile writes; on Unix, writes
   that fail mid-file (full_disk: RLIMIT_FSIZE) and files that cannot seek (a named pipe); IDX files good
   and malformed.  With -DBP_TEST_LARGE_FILES also a 3 GiB file (npy_load_large_file; make cross-test's
   Windows build).  Scratch files go to build/test/.
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

/* ---- .npz files: numpy's archives load exactly, ours are byte for byte what zipfile writes -------- */

/* bp_npz_list's callback: "name rows cols\n" appended to a text */
typedef struct npz_listing {
    char text[2048];
    int calls;
} npz_listing;

static void npz_collect(void *ctx, const char *name, int rows, int cols)
{
    npz_listing *l = (npz_listing *)ctx;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s %d %d\n", name, rows, cols);
    l->calls++;
}

/* tests/fixtures/npz/expected.txt: model.npz's members (written by np.savez, with its ZIP64 extra fields)
   load with numpy's values, bit for bit; bp_npz_list reports each listed archive's members as numpy sees
   them (-1 -1: not loadable into a tensor) */
static void test_npz_load(void)
{
    char path[512], line[4096], name[128];
    FILE *f = open_fixture("npz/expected.txt");
    int members = 0, lists = 0;
    if (!f) return;
    snprintf(path, sizeof path, "%s/npz/model.npz", fixtures_dir);
    while (fgets(line, sizeof line, f)) {
        int rows, cols, i, ok, n;
        long mallocs = test_mallocs, frees = test_frees;
        bp_tensor t = {5, 5, NULL};
        if (line[0] == '#') continue;
        if (sscanf(line, "list %127s %d", name, &n) == 2) { /* `list FILE N` and N lines NAME ROWS COLS */
            char listed[512];
            npz_listing got;
            got.text[0] = 0;
            got.calls = 0;
            snprintf(listed, sizeof listed, "%s/npz/%s", fixtures_dir, name);
            ok = bp_npz_list(listed, npz_collect, &got) == n && got.calls == n && bp_failure_reason()[0] == 0;
            for (i = 0; i < n; i++) {
                char want[sizeof line + 2], *end;
                if (!fgets(line, sizeof line, f)) break;
                end = strchr(line, '\n');
                if (end) *end = 0;
                snprintf(want, sizeof want, "%s\n", line);
                ok &= strstr(got.text, want) != NULL;
            }
            if (!ok) printf("  bp_npz_list(%s): \"%s\" %s\n", name, got.text, bp_failure_reason());
            CHECK(ok);
            CHECK(bp_npz_list(listed, NULL, NULL) == n); /* a count */
            CHECK(test_mallocs - mallocs == test_frees - frees);
            lists++;
            continue;
        }
        if (sscanf(line, "%127s %d %d", name, &rows, &cols) != 3) continue;
        ok = bp_npz_load(&t, path, name) == 0 && t.rows == rows && t.cols == cols && bp_failure_reason()[0] == 0;
        if (!ok) printf("  %s: %s\n", name, bp_failure_reason());
        for (i = 0; i < rows * cols; i++) {
            double v;
            bp_real want;
            if (fscanf(f, "%lf", &v) != 1) {
                ok = 0;
                break;
            }
            want = (bp_real)v;
            if (ok && memcmp(&t.data[i], &want, sizeof want) != 0) {
                printf("  %s element %d: %.17g, numpy %.17g\n", name, i, (double)t.data[i], (double)want);
                ok = 0;
            }
        }
        CHECK(ok);
        bp_tensor_free(&t);
        CHECK(test_mallocs - mallocs == test_frees - frees);
        members++;
    }
    fclose(f);
    CHECK(members == 5 && lists == 5);
    /* the same member from np.savez's archive, from one with a comment, from one with ZIP64 fields
       everywhere (sizes and offsets), and from ours: the same values */
    {
        static const char *const files[] = {"two.npz", "comment.npz", "zip64_fields.npz"};
        bp_tensor first = {0, 0, NULL};
        int k;
        for (k = 0; k < 3; k++) {
            bp_tensor t = {0, 0, NULL};
            snprintf(path, sizeof path, "%s/npz/%s", fixtures_dir, files[k]);
            CHECK(bp_npz_load(&t, path, "a") == 0 && t.rows == 3 && t.cols == 4);
            if (k == 0) first = t;
            else {
                CHECK(same_bits(&t, &first));
                bp_tensor_free(&t);
            }
        }
        bp_tensor_free(&first);
    }
    /* bad arguments: the handler */
    {
        bp_tensor t = {3, 3, NULL};
        CHECK(bp_npz_load(NULL, path, "a") == -1);
        EXPECT_ERROR("bp_npz_load", "t is NULL");
        CHECK(bp_npz_load(&t, path, NULL) == -1);
        EXPECT_ERROR("bp_npz_load", "name is NULL");
        CHECK(t.rows == 0 && t.cols == 0 && t.data == NULL);
        t.rows = 3;
        CHECK(bp_npz_load(&t, NULL, "a") == -1);
        EXPECT_ERROR("bp_npz_load", "path is NULL");
        CHECK(t.rows == 0);
        CHECK(bp_npz_list(NULL, NULL, NULL) == -1);
        EXPECT_ERROR("bp_npz_list", "path is NULL");
    }
}

/* Each malformed archive (written by gen_fixtures.py): -1, a one-line reason with the word given, the
   tensor empty, no handler call, nothing leaked; bp_npz_list refuses the same archives (without calling
   back) except where only the member's bytes are bad. */
static void test_npz_load_malformed(void)
{
    static const struct {
        const char *file, *member, *reason;
        int lists; /* 1: the directory is sound, bp_npz_list succeeds */
    } bad[] = {
        {"compressed.npz", "a", "np.savez, not np.savez_compressed", 0}, /* deflate */
        {"truncated.npz", "fc1.bias", "no ZIP end record", 0},          /* model.npz less 30 bytes */
        {"trailing_bytes.npz", "a", "no ZIP end record", 0},            /* 5 zero bytes after the end record */
        {"zero_bytes.npz", "a", "no ZIP end record", 0},
        {"npy_not_npz.npz", "a", "bp_tensor_load_npy reads it", 0},       /* a .npy file */
        {"not_npy_member.npz", "a", "member 'notes.txt' is not a .npy", 0},
        {"bad_member_bytes.npz", "a", "not a .npy file", 1},              /* a.npy holds a CSV */
        {"duplicate.npz", "a", "two members are named 'a.npy'", 0},
        {"data_descriptor.npz", "a", "data descriptor", 0},               /* zipfile on a stream */
        {"zip64_end.npz", "a", "ZIP64 end records", 0},
        {"bad_crc.npz", "a", "CRC-32", 1},                                /* one bit of a.npy flipped */
        {"multi_part.npz", "a", "multi-part", 0},
        {"entries_on_disk.npz", "a", "multi-part", 0},
        {"empty_name.npz", "a", "member '.npy' is not a .npy file", 0},
        {"count_lies.npz", "a", "the end record says 3 members", 0},
        {"dir_offset_lies.npz", "a", "damaged", 0},
        {"local_offset_lies.npz", "a", "no local header", 0},
        {"size_lies.npz", "a", "disagrees with the directory", 0},       /* directory: 1 byte more than local */
        {"sizes_differ.npz", "b", "damaged directory entry", 0},         /* compressed != uncompressed */
        {"local_name_differs.npz", "a", "disagrees with the directory", 0},
        {"encrypted.npz", "b", "encrypted", 0},
        {"past_directory.npz", "a", "run past the start of the directory", 0},
        {"bad_zip64_extra.npz", "fc1.bias", "disagrees with the directory", 0}, /* an extra field's length lies */
        {"bzip2.npz", "a", "not deflate either", 0},                   /* method 12 */
        {"local_flags.npz", "a", "disagrees with the directory", 0},      /* a data descriptor in one copy */
        {"local_method.npz", "a", "disagrees with the directory", 0},
        {"local_crc.npz", "a", "disagrees with the directory", 0},
        {"zip64_value_missing.npz", "a", "damaged directory entry", 0}, /* 0xffffffff, no ZIP64 field */
        {"disk_start.npz", "a", "damaged directory entry", 0},
        {"offset_past_directory.npz", "a", "damaged directory entry", 0},
        {"nul_in_name.npz", "a", "is not a .npy file", 0},               /* "\0.npy" */
        {"entry_misplaced.npz", "a", "directory entry 2 of 2 is not where", 0},  /* PK\1\3 */
        {"entry_past_directory.npz", "a", "runs past the directory's end", 0},  /* a comment too long */
        {"directory_extra_bytes.npz", "a", "bytes in the directory after its 1 entries", 0},
        {"local_name_too_long.npz", "a", "runs into the directory", 0},
        {"two.npz", "c", "no member 'c'", 1},
        {"no_such_file.npz", "a", "cannot open", 0},
    };
    char path[512];
    int k;
    for (k = 0; k < (int)(sizeof bad / sizeof *bad); k++) {
        bp_real sentinel = 7;
        bp_tensor t;
        long mallocs = test_mallocs, frees = test_frees;
        const char *reason;
        npz_listing got;
        int rc, ok, listed;
        t.rows = 7;
        t.cols = 9;
        t.data = &sentinel;
        snprintf(path, sizeof path, "%s/npz/%s", fixtures_dir, bad[k].file);
        rc = bp_npz_load(&t, path, bad[k].member);
        reason = bp_failure_reason();
        ok = rc == -1 && t.data == NULL && t.rows == 0 && t.cols == 0 && errors_seen == 0;
        ok &= test_mallocs - mallocs == test_frees - frees;
        ok &= strncmp(reason, "bp_npz_load: ", 13) == 0 && strstr(reason, path) != NULL &&
              strstr(reason, bad[k].reason) != NULL && !strchr(reason, '\n');
        if (!ok)
            printf("  %s: returned %d, t %dx%d, %d handler calls, %ld mallocs %ld frees, reason \"%s\" (wanted \"%s\")\n",
                   bad[k].file, rc, t.rows, t.cols, errors_seen, test_mallocs - mallocs, test_frees - frees, reason,
                   bad[k].reason);
        CHECK(ok);
        got.text[0] = 0;
        got.calls = 0;
        listed = bp_npz_list(path, npz_collect, &got);
        ok = bad[k].lists ? listed > 0 && got.calls == listed
                          : listed == -1 && got.calls == 0 && strncmp(bp_failure_reason(), "bp_npz_list: ", 13) == 0 &&
                                strstr(bp_failure_reason(), bad[k].reason) != NULL;
        if (!ok) printf("  bp_npz_list(%s): %d, \"%s\"\n", bad[k].file, listed, bp_failure_reason());
        CHECK(ok && errors_seen == 0 && test_mallocs - mallocs == test_frees - frees);
        errors_seen = 0;
    }
}

static void test_npz_save(void)
{
    const char *path = SCRATCH "/saved.npz";
    char fixture[512];
    bp_rng rng;
    bp_tensor a = bp_tensor_new(3, 5), b = bp_tensor_new(1, 7), e = bp_tensor_new(0, 4);
    const char *names[3] = {"fc1.weight", "fc1.bias", "nothing"};
    const bp_tensor *tensors[3];
    long mallocs, frees;
    int k, ok;
    tensors[0] = &a;
    tensors[1] = &b;
    tensors[2] = &e;
    bp_rng_seed(&rng, 14);
    bp_tensor_randn(&a, &rng, 1);
    bp_tensor_randn(&b, &rng, 1);
    a.data[1] = -(bp_real)0.0;
    a.data[2] = (bp_real)HUGE_VAL;
    a.data[3] = sizeof(bp_real) == 8 ? (bp_real)4.9406564584124654e-324 : (bp_real)1.4012984643e-45;

    /* save, list, load: the same names, shapes and bits; only the .part name allocated */
    mallocs = test_mallocs;
    frees = test_frees;
    ok = bp_npz_save(path, 3, names, tensors) == 0 && bp_failure_reason()[0] == 0;
    ok &= test_mallocs - mallocs == 1 && test_frees - frees == 1 && fopen_fails(SCRATCH "/saved.npz.part");
    CHECK(ok);
    {
        npz_listing got;
        got.text[0] = 0;
        got.calls = 0;
        CHECK(bp_npz_list(path, npz_collect, &got) == 3 &&
              strcmp(got.text, "fc1.weight 3 5\nfc1.bias 1 7\nnothing 0 4\n") == 0);
    }
    for (k = 0; k < 3; k++) {
        bp_tensor back = {0, 0, NULL};
        CHECK(bp_npz_load(&back, path, names[k]) == 0 && same_bits(&back, tensors[k]));
        bp_tensor_free(&back);
    }
    /* (a copy stays in build/test/roundtrip.npz: np.load reads it, the same names and values) */
    CHECK(bp_npz_save(SCRATCH "/roundtrip.npz", 3, names, tensors) == 0);

    /* the bytes Python's zipfile writes for the same members (gen_fixtures.py; np.load reads that file) */
    {
        static const char *const members[] = {"W1", "layer.bias", "e", "gr\303\266\303\237e"}; /* UTF-8, in octal */
        bp_tensor t[4];
        const bp_tensor *tp[4];
        const char *mine = SCRATCH "/ours.npz";
        snprintf(fixture, sizeof fixture, "%s/npz/ours_f%d.npz", fixtures_dir, (int)sizeof(bp_real));
        for (k = 0; k < 4; k++) {
            CHECK(bp_npz_load(&t[k], fixture, members[k]) == 0);
            tp[k] = &t[k];
        }
        CHECK(bp_npz_save(mine, 4, members, tp) == 0 && same_file_bytes(mine, fixture));
        for (k = 0; k < 4; k++) bp_tensor_free(&t[k]);
        /* no tensors: a ZIP of only an end record, what np.savez() writes */
        snprintf(fixture, sizeof fixture, "%s/npz/empty.npz", fixtures_dir);
        CHECK(bp_npz_save(mine, 0, NULL, NULL) == 0 && same_file_bytes(mine, fixture) && bp_npz_list(mine, NULL, NULL) == 0);
        remove(mine);
    }

    /* saving over an existing archive replaces it */
    CHECK(bp_npz_save(path, 1, names + 1, tensors + 1) == 0 && bp_npz_list(path, NULL, NULL) == 1);

    /* failures: a file problem returns -1 with a reason; bad arguments call the handler */
    {
        const char *unwritable = SCRATCH "/no_such_directory/x.npz";
        bp_tensor unallocated = {2, 2, NULL};
        const bp_tensor *bad_tensors[2];
        const char *twice[2] = {"w", "w"}, *null_name[2] = {"w", NULL}, *empty_name[2] = {"", "w"};
        bad_tensors[0] = &a;
        bad_tensors[1] = &unallocated;
        CHECK(bp_npz_save(unwritable, 1, names, tensors) == -1 && errors_seen == 0);
        CHECK(strncmp(bp_failure_reason(), "bp_npz_save: ", 13) == 0 && strstr(bp_failure_reason(), "cannot open"));
        CHECK(bp_npz_save(SCRATCH, 1, names, tensors) == -1 && strstr(bp_failure_reason(), "cannot rename") != NULL);
        CHECK(errors_seen == 0 && fopen_fails(SCRATCH ".part"));
        CHECK(bp_npz_save(NULL, 1, names, tensors) == -1);
        EXPECT_ERROR("bp_npz_save", "path is NULL");
        CHECK(bp_npz_save(path, -1, names, tensors) == -1);
        EXPECT_ERROR("bp_npz_save", "count is negative", "-1");
        CHECK(bp_npz_save(path, 1, NULL, tensors) == -1);
        EXPECT_ERROR("bp_npz_save", "names is NULL");
        CHECK(bp_npz_save(path, 1, names, NULL) == -1);
        EXPECT_ERROR("bp_npz_save", "tensors is NULL");
        CHECK(bp_npz_save(path, 2, names, bad_tensors) == -1);
        EXPECT_ERROR("bp_npz_save", "tensors[1] is 2x2", "NULL");
        CHECK(bp_npz_save(path, 2, twice, tensors) == -1);
        EXPECT_ERROR("bp_npz_save", "names[0] and names[1] are both 'w'");
        CHECK(bp_npz_save(path, 2, null_name, tensors) == -1);
        EXPECT_ERROR("bp_npz_save", "names[1] is NULL");
        CHECK(bp_npz_save(path, 2, empty_name, tensors) == -1);
        EXPECT_ERROR("bp_npz_save", "names[0] is empty");
        {
            char *long_name = (char *)malloc(60002);
            if (long_name) {
                const char *long_names[1];
                memset(long_name, 'w', 60001);
                long_name[60001] = 0;
                long_names[0] = long_name;
                CHECK(bp_npz_save(path, 1, long_names, tensors) == -1);
                EXPECT_ERROR("bp_npz_save", "names[0] is longer than 60000 characters");
                free(long_name);
            }
        }
        /* too much for a ZIP without ZIP64: refused before anything is written (or read: the count before the
           arrays, a 65536x16384 tensor's 4 GiB before its data) */
        {
            bp_tensor huge = {65536, 16384, NULL};
            const bp_tensor *one[1];
            huge.data = a.data;
            one[0] = &huge;
            CHECK(bp_npz_save(path, 1, names, one) == -1 && strstr(bp_failure_reason(), "(4 GiB)") && errors_seen == 0);
            CHECK(bp_npz_save(path, 65535, names, tensors) == -1 && strstr(bp_failure_reason(), "65535 tensors") &&
                  errors_seen == 0);
        }
        /* none of them touched the archive that was there */
        CHECK(bp_npz_list(path, NULL, NULL) == 1);
    }
    remove(path);
    bp_tensor_free(&a);
    bp_tensor_free(&b);
    bp_tensor_free(&e);
}

/* ---- full disks: a write that fails mid-file ----------------------------------------------------------
   setrlimit(RLIMIT_FSIZE) caps the size of any file this process writes; with SIGXFSZ ignored, a write past
   it fails with EFBIG, as on a full disk.  For each cap (0 bytes, 1, inside the header, at stdio's buffer
   edges, one byte short of the whole file) .npy and .npz saving must return -1 with a reason, leave the
   file that was there untouched, and leave no path.part behind.  The limit is restored after each save. */
#if defined(__unix__) && !defined(__EMSCRIPTEN__)
#include <signal.h>
#include <sys/resource.h>
#define BP_TEST_FULL_DISK 1

/* Saves with the file size capped at limit bytes (npz: as a .npz of t, else a .npy); returns the result. */
static int save_capped(const bp_tensor *t, const char *path, int npz, long limit)
{
    struct rlimit old, capped;
    const char *names[1] = {"t"};
    int rc;
    if (getrlimit(RLIMIT_FSIZE, &old) != 0) return -2;
    capped = old;
    capped.rlim_cur = (rlim_t)limit;
    if (old.rlim_max != RLIM_INFINITY && old.rlim_max < capped.rlim_cur) return -2;
    if (setrlimit(RLIMIT_FSIZE, &capped) != 0) return -2;
    rc = npz ? bp_npz_save(path, 1, names, &t) : bp_tensor_save_npy(t, path);
    setrlimit(RLIMIT_FSIZE, &old);
    return rc;
}

/* Files that cannot seek: a named pipe (FIFO), which a child process writes into, for each loader; and
   (on Linux, where fopen opens a folder) a folder, whose reading fails. */
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>
static void test_unseekable_files(void)
{
    const char *fifo = SCRATCH "/fifo.npy";
    int k;
    for (k = 0; k < 3; k++) {
        bp_tensor t = {0, 0, NULL};
        bp_idx idx;
        pid_t child;
        int rc, status;
        remove(fifo);
        if (mkfifo(fifo, 0600) != 0) {
            printf("  mkfifo failed: not tested\n");
            return;
        }
        child = fork();
        if (child == 0) { /* the writer: 64 bytes (the start of a .npy, or of an IDX file), then gone */
            char bytes[64] = "\x93NUMPY\x01\x00";
            int fd = open(fifo, O_WRONLY);
            if (k == 2) memcpy(bytes, "\0\0\x08\x01\0\0\0\x05", 8);
            if (fd >= 0 && write(fd, bytes, sizeof bytes) == (ssize_t)sizeof bytes) close(fd);
            _exit(0);
        }
        CHECK(child > 0);
        if (child <= 0) return;
        rc = k == 0 ? bp_tensor_load_npy(&t, fifo) : k == 1 ? bp_npz_load(&t, fifo, "a") : bp_idx_load(&idx, fifo);
        CHECK(rc == -1 && strstr(bp_failure_reason(), "cannot seek in the file (it must be a regular file)") &&
              errors_seen == 0);
        waitpid(child, &status, 0);
        remove(fifo);
    }
#ifdef __linux__
    {
        bp_tensor t = {0, 0, NULL};
        /* (a folder's "length" is LONG_MAX on 64-bit Linux, where reading fails; 32-bit ftell cannot say it) */
        CHECK(bp_npz_load(&t, SCRATCH, "a") == -1 && errors_seen == 0 &&
              (strstr(bp_failure_reason(), "cannot read") || strstr(bp_failure_reason(), "cannot seek")));
    }
#endif
}

static void test_full_disk(void)
{
    bp_tensor t = bp_tensor_new(100, 100), old = bp_tensor_new(2, 2);
    const bp_tensor *olds[1];
    const char *names[1] = {"t"};
    void (*previous)(int) = signal(SIGXFSZ, SIG_IGN);
    int npz, k, cases = 0;
    olds[0] = &old;
    fill(&t, 3);
    fill(&old, 5);
    for (npz = 0; npz < 2; npz++) {
        const char *path = npz ? SCRATCH "/full_disk.npz" : SCRATCH "/full_disk.npy";
        const char *part = npz ? SCRATCH "/full_disk.npz.part" : SCRATCH "/full_disk.npy.part";
        long whole = npz ? 40000L * sizeof(bp_real) / 4 + 128 + 30 + 5 + 46 + 5 + 22 : 40000L * sizeof(bp_real) / 4 + 128;
        long limits[8];
        limits[0] = 0;
        limits[1] = 1;
        limits[2] = 50;   /* inside the first header */
        limits[3] = 4095; /* around stdio's buffer */
        limits[4] = 4096;
        limits[5] = 4097;
        limits[6] = whole / 2;
        limits[7] = whole - 1; /* the last byte (.npz: of the end record) does not fit */
        CHECK(npz ? bp_npz_save(path, 1, names, olds) == 0 : bp_tensor_save_npy(&old, path) == 0);
        for (k = 0; k < 8; k++) {
            long mallocs = test_mallocs, frees = test_frees;
            bp_tensor back = {0, 0, NULL};
            int rc = save_capped(&t, path, npz, limits[k]), ok;
            if (rc == -2) {
                printf("  setrlimit(RLIMIT_FSIZE) failed: not tested\n");
                break;
            }
            ok = rc == -1 && errors_seen == 0 && strstr(bp_failure_reason(), "writing failed") != NULL &&
                 strstr(bp_failure_reason(), path) != NULL && fopen_fails(part);
            ok &= test_mallocs - mallocs == test_frees - frees;
            /* the old file, intact */
            ok &= (npz ? bp_npz_load(&back, path, "t") : bp_tensor_load_npy(&back, path)) == 0 && same_bits(&back, &old);
            if (!ok)
                printf("  %s capped at %ld bytes: returned %d, \"%s\"\n", path, limits[k], rc, bp_failure_reason());
            CHECK(ok);
            bp_tensor_free(&back);
            cases++;
        }
        /* the whole file fits exactly: saved */
        {
            bp_tensor back = {0, 0, NULL};
            CHECK(save_capped(&t, path, npz, whole) == 0);
            CHECK((npz ? bp_npz_load(&back, path, "t") : bp_tensor_load_npy(&back, path)) == 0 && same_bits(&back, &t));
            bp_tensor_free(&back);
        }
        remove(path);
    }
    CHECK(cases == 16);
    signal(SIGXFSZ, previous);
    bp_tensor_free(&t);
    bp_tensor_free(&old);
}
#endif

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
