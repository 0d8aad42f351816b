// SPDX-License-Identifier: MIT
/*
 * tlscerts.h — certificates made at test time with OpenSSL's API, for the tls:// tests,
 * the conformance suite's tls rows and the bench: a CA, and leaf certificates it (or
 * another CA) signs, valid now or already expired, with the names a test asks for. EC
 * P-256 keys (fast to make). Everything is PEM text in malloc'd strings (tc_pem), or
 * files in a directory the caller removes (tc_write). Header-only; link OpenSSL.
 * Failures abort the program (a test cannot go on without its certificates).
 */
#ifndef FERRY_TLSCERTS_H
#define FERRY_TLSCERTS_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tc_cert {
    EVP_PKEY *key;
    X509 *x;
    char *cert_pem, *key_pem; /* PEM text of x and key (malloc'd) */
} tc_cert;

static inline void tc_die(const char *what)
{
    fprintf(stderr, "tlscerts: %s failed\n", what);
    exit(1);
}

static inline char *tc_bio_str(BIO *b)
{
    char *d;
    long n = BIO_get_mem_data(b, &d);
    char *s = malloc((size_t)n + 1);
    if (!s) tc_die("malloc");
    memcpy(s, d, (size_t)n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

static inline void tc_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v;
    X509V3_set_ctx_nodb(&v);
    X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, nid, value);
    if (!e || X509_add_ext(x, e, -1) != 1) tc_die(value);
    X509_EXTENSION_free(e);
}

/*
 * A certificate for cn with the subject alternative names san (OpenSSL's syntax:
 * "DNS:localhost,IP:127.0.0.1"; NULL: none), valid from now + from_s to now + to_s,
 * signed by issuer (NULL: self-signed, a CA when ca != 0).
 */
static inline tc_cert tc_make(const char *cn, const char *san, const tc_cert *issuer, long from_s,
                              long to_s, int ca)
{
    static long serial = 1;
    tc_cert c = {0};
    c.key = EVP_EC_gen("P-256");
    c.x = X509_new();
    if (!c.key || !c.x) tc_die("key");
    X509_set_version(c.x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c.x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(c.x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(c.x), to_s);
    X509_set_pubkey(c.x, c.key);
    X509_NAME *n = X509_get_subject_name(c.x);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"ferry tests", -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(c.x, issuer ? X509_get_subject_name(issuer->x) : n);
    if (ca) {
        tc_ext(c.x, NULL, NID_basic_constraints, "critical,CA:TRUE");
        tc_ext(c.x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
        tc_ext(c.x, NULL, NID_subject_key_identifier, "hash");
    } else {
        tc_ext(c.x, issuer ? issuer->x : NULL, NID_basic_constraints, "CA:FALSE");
        tc_ext(c.x, issuer ? issuer->x : NULL, NID_ext_key_usage, "serverAuth,clientAuth");
        if (san) tc_ext(c.x, issuer ? issuer->x : NULL, NID_subject_alt_name, san);
    }
    if (X509_sign(c.x, issuer ? issuer->key : c.key, EVP_sha256()) <= 0) tc_die("sign");
    BIO *b = BIO_new(BIO_s_mem());
    if (!b || PEM_write_bio_X509(b, c.x) != 1) tc_die("pem");
    c.cert_pem = tc_bio_str(b);
    b = BIO_new(BIO_s_mem());
    if (!b || PEM_write_bio_PrivateKey(b, c.key, NULL, NULL, 0, NULL, NULL) != 1) tc_die("pem");
    c.key_pem = tc_bio_str(b);
    return c;
}

static inline void tc_free(tc_cert *c)
{
    EVP_PKEY_free(c->key);
    X509_free(c->x);
    free(c->cert_pem);
    free(c->key_pem);
    memset(c, 0, sizeof *c);
}

/* Write text to path (0600). */
static inline void tc_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) tc_die(path);
}

/* The SHA-256 of c's certificate (as ferry_peer_cert.sha256). */
static inline void tc_sha256(const tc_cert *c, unsigned char out[32])
{
    unsigned int n = 0;
    if (X509_digest(c->x, EVP_sha256(), out, &n) != 1 || n != 32) tc_die("digest");
}

#endif
