// SPDX-License-Identifier: MIT
/*
 * replay_main.c — a main() for a libFuzzer harness built without libFuzzer: runs every
 * regular file of each directory (or each file) named on the command line once through
 * LLVMFuzzerTestOneInput. A broken invariant aborts; exit status 1 if an argument cannot
 * be read or nothing was run (an empty or missing corpus is an error).
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Run one file (in a buffer of exactly its size, so ASan sees any overread); returns 0,
 * or -1 if it cannot be read. */
static int run_file(const char *path, size_t size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    uint8_t *buf = malloc(size ? size : 1);
    int bad = !buf || fread(buf, 1, size, fp) != size;
    fclose(fp);
    if (!bad) LLVMFuzzerTestOneInput(buf, size);
    free(buf);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    int runs = 0, errors = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            errors++;
        } else if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            if (!d) {
                perror(argv[i]);
                errors++;
                continue;
            }
            while ((e = readdir(d)) != NULL) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
                if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
                if (run_file(path, (size_t)st.st_size) != 0) {
                    perror(path);
                    errors++;
                } else {
                    runs++;
                }
            }
            closedir(d);
        } else if (run_file(argv[i], (size_t)st.st_size) != 0) {
            perror(argv[i]);
            errors++;
        } else {
            runs++;
        }
    }
    printf("replayed %d inputs, %d errors\n", runs, errors);
    return errors == 0 && runs > 0 ? 0 : 1;
}
