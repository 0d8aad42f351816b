// SPDX-License-Identifier: MIT
/*
 * test_url.c — ferry__url_split (core/url.h): the scheme comes out folded to lower case
 * and the rest is the transport's, untouched (ports, IPv6 brackets, paths, an empty
 * rest); every malformed URL is exactly -EINVAL (no "://", an empty scheme, one longer
 * than 15, a character outside letters, digits, '+', '-', '.', NULL arguments), and a
 * refused URL leaves the caller's rest pointer alone.
 */
#include "core/url.h"
#include "testutil.h"

static const char *untouched = "untouched";

/* Split url; on success check the scheme and the rest; on failure that rest is untouched. */
static void split(const char *url, int want, const char *scheme, const char *rest)
{
    char s[16];
    const char *r = untouched;
    memset(s, 'Z', sizeof s);
    int rc = ferry__url_split(url, s, &r);
    if (rc != want) fprintf(stderr, "url \"%s\"\n", url);
    CHECK_EQ(rc, want);
    if (want != 0) {
        CHECK(r == untouched);
        return;
    }
    CHECK(strcmp(s, scheme) == 0);
    CHECK(strcmp(r, rest) == 0);
    CHECK(r >= url && r <= url + strlen(url)); /* points into the caller's string */
}

static void test_schemes(void)
{
    split("shm://name", 0, "shm", "name");
    split("unix:///run/ferry.sock", 0, "unix", "/run/ferry.sock");
    split("tcp://127.0.0.1:5555", 0, "tcp", "127.0.0.1:5555");
    split("tcp://[::1]:5555", 0, "tcp", "[::1]:5555");
    split("tcp://[::1]", 0, "tcp", "[::1]");
    split("tcp://host:0", 0, "tcp", "host:0");
    split("tcp://host:99999999", 0, "tcp", "host:99999999"); /* the port is the transport's */
    split("fifo://a://b", 0, "fifo", "a://b");               /* only the first "://" splits */
    split("shm://", 0, "shm", "");                           /* an empty rest is the transport's */
    split("a+b-c.9://x", 0, "a+b-c.9", "x");
    split("9://x", 0, "9", "x");
}

static void test_case(void)
{
    split("SHM://Name", 0, "shm", "Name"); /* the rest keeps its case */
    split("Unix://X", 0, "unix", "X");
    split("TcP://[::1]:1", 0, "tcp", "[::1]:1");
    split("ABCDEFGHIJKLMNO://x", 0, "abcdefghijklmno", "x");
}

static void test_lengths(void)
{
    split("abcdefghijklmno://x", 0, "abcdefghijklmno", "x"); /* 15: the longest */
    split("abcdefghijklmnop://x", -EINVAL, NULL, NULL);      /* 16 */
    char long_url[4096];
    memset(long_url, 'a', sizeof long_url);
    memcpy(long_url + 4000, "://x", 5);
    split(long_url, -EINVAL, NULL, NULL);
    split("", -EINVAL, NULL, NULL);
    split("://x", -EINVAL, NULL, NULL);
    split("://", -EINVAL, NULL, NULL);
}

static void test_malformed(void)
{
    split("shm", -EINVAL, NULL, NULL);
    split("shm:/x", -EINVAL, NULL, NULL);
    split("shm:x", -EINVAL, NULL, NULL);
    split("/tmp/sock", -EINVAL, NULL, NULL);
    split("[::1]:80", -EINVAL, NULL, NULL);
    split("sh m://x", -EINVAL, NULL, NULL);
    split("sh_m://x", -EINVAL, NULL, NULL);
    split("a:b://x", -EINVAL, NULL, NULL);
    split("a/b://x", -EINVAL, NULL, NULL);
    split(" shm://x", -EINVAL, NULL, NULL);
    split("\xc3\xa9://x", -EINVAL, NULL, NULL); /* non-ASCII */
    split("tcp\t://x", -EINVAL, NULL, NULL);

    char s[16];
    const char *r = untouched;
    CHECK_EQ(ferry__url_split(NULL, s, &r), -EINVAL);
    CHECK_EQ(ferry__url_split("shm://x", NULL, &r), -EINVAL);
    CHECK_EQ(ferry__url_split("shm://x", s, NULL), -EINVAL);
    CHECK(r == untouched);
}

int main(void)
{
    test_schemes();
    test_case();
    test_lengths();
    test_malformed();
    printf("ok: url\n");
    return 0;
}
