/* Runs a fuzz harness over saved inputs without libFuzzer: link it with fuzz_npy.c or fuzz_idx.c and
   pass files or folders.  make sanitize builds it (with any compiler, under ASan + UBSan) and replays the
   seed corpus and tests/fuzz/regressions/ -- every input that ever broke a promise -- so those stay fixed
   without clang's libFuzzer.  Prints "replayed N inputs" and exits 0, or aborts on the first broken one. */

#define _POSIX_C_SOURCE 200809L /* opendir */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long replayed;

static void replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data;
    long size;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        exit(2);
    }
    data = (uint8_t *)malloc((size_t)size + 1);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    LLVMFuzzerTestOneInput(data, (size_t)size);
    free(data);
    replayed++;
}

static void replay(const char *path)
{
    struct stat st;
    DIR *dir;
    struct dirent *entry;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: no such file or folder: %s\n", path);
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        replay_file(path);
        return;
    }
    dir = opendir(path);
    if (!dir) exit(2);
    while ((entry = readdir(dir)) != NULL) {
        char child[4096];
        if (entry->d_name[0] == '.') continue;
        snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
        replay(child);
    }
    closedir(dir);
}

int main(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++) replay(argv[i]);
    printf("replayed %ld inputs\n", replayed);
    return 0;
}
