// SPDX-License-Identifier: MIT
/*
 * test_cluster_tls — the bridges authenticated by TLS client certificates
 * (docs/cluster.md): the nats-servers require TLS with a client certificate of the test's
 * CA and map it to the user (verify_and_map: CN=hostb is user "CN=hostb", with the
 * permissions of docs/cluster.md); the bridges connect with --tls-ca/--tls-cert/--tls-key
 * and no password. An unprivileged caller on B calls a name served on A; a NATS client
 * without a certificate, and one with a certificate for a user the servers do not know,
 * cannot connect. Skipped (77) when not root or without `ip` / nats-server / openssl.
 */
#include "testutil.h"

#include "brokerutil.h"
#include "secutil.h"

#include "clusterutil.h"

#include <ferry/ferry.h>
#include <nats/nats.h>

static cluster C;

static void server_child(void *arg)
{
    (void)arg;
    cl_serve_forever("org.test.echo", cl_echo, 2);
}

static void caller(void *arg)
{
    (void)arg;
    ferry_rpc_client *c = cl_rpc_connect("org.test.echo");
    for (int i = 0; i < 100; i++) {
        char msg[32], buf[32];
        int n = snprintf(msg, sizeof msg, "tls-%d", i);
        ferry_msg q = {.data = msg, .len = (size_t)n}, r = {.data = buf, .cap = sizeof buf};
        CHECK_EQ(ferry_call(c, &q, &r, 5 * SEC), n);
        CHECK(memcmp(buf, msg, (size_t)n) == 0);
    }
    ferry_rpc_client_close(c);
}

/* Without a client certificate, or with one for an unknown user: no connection. */
static void outsiders(void *arg)
{
    (void)arg;
    char ca[128], cert[128], key[128];
    snprintf(ca, sizeof ca, "%s/ca.pem", C.dir);
    for (int k = 0; k < 2; k++) {
        natsOptions *o;
        natsConnection *nc = NULL;
        CHECK(natsOptions_Create(&o) == NATS_OK);
        CHECK(natsOptions_SetURL(o, "tls://10.99.0.2:4222") == NATS_OK);
        CHECK(natsOptions_SetSecure(o, true) == NATS_OK);
        CHECK(natsOptions_LoadCATrustedCertificates(o, ca) == NATS_OK);
        CHECK(natsOptions_SetMaxReconnect(o, 0) == NATS_OK);
        if (k == 1) { /* a valid certificate of the CA, for CN=nobody: not a user */
            snprintf(cert, sizeof cert, "%s/cli-nobody.pem", C.dir);
            snprintf(key, sizeof key, "%s/cli-nobody.key", C.dir);
            CHECK(natsOptions_LoadCertificatesChain(o, cert, key) == NATS_OK);
        }
        natsStatus s = natsConnection_Connect(&nc, o);
        if (s == NATS_OK) fprintf(stderr, "outsider %d connected\n", k);
        CHECK(s != NATS_OK);
        natsConnection_Destroy(nc);
        natsOptions_Destroy(o);
    }
    nats_CloseAndWait(2000);
}

int main(void)
{
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        printf("SKIP: no openssl command\n");
        return 77;
    }
    cl_tls = 1;
    cl_begin(&C, 170, 0);
    /* a certificate of the CA for a name no user has */
    cl_sh("cd %s && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
          "-keyout cli-nobody.key -out cli-nobody.csr -subj /CN=nobody 2>/dev/null && "
          "openssl x509 -req -in cli-nobody.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
          "-out cli-nobody.pem -days 1 -extfile cli.ext 2>/dev/null",
          C.dir);
    host *A = &C.h[0], *B = &C.h[1];
    const char *exp_a[] = {"--export", "org.test.echo=hostb", "--heartbeat-ms", "200", NULL};
    const char *exp_b[] = {"--import", "org.test.*=hosta", "--heartbeat-ms", "200", NULL};
    cl_bridges(&C, exp_a, exp_b);
    pid_t s = cl_spawn(A, &ROOT, server_child, NULL);
    wait_ok(cl_spawn(B, &CALLER_ID, caller, NULL));
    wait_ok(cl_spawn(B, &ROOT, outsiders, NULL));
    cl_kill(&s);
    cl_down(&C);
    printf("ok\n");
    return 0;
}
