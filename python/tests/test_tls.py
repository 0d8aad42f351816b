# SPDX-License-Identifier: MIT
"""tls:// from Python: ferry.TLS options for listen and open, a round trip, each
handshake failure with its exact errno on both sides, and Channel.peer_cert(). The
certificates are made with the openssl CLI in a temporary directory (EC P-256, as
tests/common/tlscerts.h does in C). Skipped when libferry was built without TLS."""

import errno
import hashlib
import os
import shutil
import ssl
import subprocess
import tempfile
import threading

import pytest

import ferry

T = 30.0  # generous: a loaded 2-core VM under sanitizers


def _run(d, *args):
    subprocess.run(("openssl",) + args, cwd=d, check=True, capture_output=True, timeout=60)


class Certs:
    """A CA, another CA, and leaves: server (localhost, 127.0.0.1), client, a client of
    the other CA, a server for other names, an expired server."""

    def __init__(self, d):
        self.d = d
        self._serial = 1
        self.ca = self._ca("ca", "ferry test CA")
        self.other_ca = self._ca("other", "ferry other CA")
        self.server = self._leaf("server", "server", "DNS:localhost,IP:127.0.0.1", "ca")
        self.client = self._leaf("client", "alice", "DNS:alice.example,email:alice@example.org",
                                 "ca")
        self.rogue = self._leaf("rogue", "mallory", "DNS:mallory.example", "other")
        self.wrong_host = self._leaf("wrong", "elsewhere", "DNS:elsewhere.example", "ca")
        self.expired = self._leaf("expired", "server", "DNS:localhost,IP:127.0.0.1", "ca",
                                  expired=True)

    def p(self, name):
        return os.path.join(self.d, name)

    def _key(self, name):
        _run(self.d, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", name + ".key")

    def _ca(self, name, cn):
        self._key(name)
        _run(self.d, "req", "-x509", "-new", "-key", name + ".key", "-subj",
             "/O=ferry tests/CN=" + cn, "-days", "2", "-out", name + ".pem", "-addext",
             "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return (self.p(name + ".pem"), self.p(name + ".key"))

    def _leaf(self, name, cn, san, ca, expired=False):
        self._key(name)
        _run(self.d, "req", "-new", "-key", name + ".key", "-subj", "/O=ferry tests/CN=" + cn,
             "-out", name + ".csr")
        with open(self.p(name + ".ext"), "w") as f:
            f.write("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
                    "subjectAltName=%s\n" % san)
        self._serial += 1
        if expired:
            # openssl x509 cannot date a certificate in the past; openssl ca can.
            with open(self.p("ca.cnf"), "w") as f:
                f.write("[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\n"
                        "serial=serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n"
                        "[p]\ncommonName=supplied\norganizationName=optional\n")
            open(self.p("index.txt"), "w").close()
            with open(self.p("serial"), "w") as f:
                f.write("%02X\n" % (100 + self._serial))
            _run(self.d, "ca", "-batch", "-config", "ca.cnf", "-cert", ca + ".pem", "-keyfile",
                 ca + ".key", "-in", name + ".csr", "-out", name + ".pem", "-notext",
                 "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-extfile",
                 name + ".ext")
        else:
            _run(self.d, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey",
                 ca + ".key", "-set_serial", str(self._serial), "-days", "2", "-sha256",
                 "-extfile", name + ".ext", "-out", name + ".pem")
        return (self.p(name + ".pem"), self.p(name + ".key"))

    def sha256(self, cert):
        with open(cert[0]) as f:
            return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).digest()


@pytest.fixture(scope="module")
def certs():
    if shutil.which("openssl") is None:
        pytest.skip("no openssl CLI")
    d = tempfile.mkdtemp(prefix="ferry-pytest-tls-")
    try:
        yield Certs(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _listen(tls, **kw):
    try:
        return ferry.listen("tls://127.0.0.1:0", tls=tls, **kw)
    except ferry.Error as e:
        if e.errno == errno.EPROTONOSUPPORT:
            pytest.skip("libferry built without tls:// (FERRY_TLS)")
        raise


class Server(threading.Thread):
    """accept() once in a thread (the handshake runs while the client opens); keeps the
    channel or the exception."""

    def __init__(self, lis, echo=0):
        super().__init__(daemon=True)
        self.lis, self.echo, self.ch, self.exc, self.cert = lis, echo, None, None, None

    def run(self):
        try:
            self.ch = self.lis.accept(timeout=T)
            self.cert = self.ch.peer_cert()
            for _ in range(self.echo):
                m = self.ch.recv(timeout=T)
                self.ch.send(m.data[::-1], type=m.type, timeout=T)
        except Exception as e:  # noqa: BLE001 — reported to the test
            self.exc = e

    def finish(self):
        self.join(T + 10)
        assert not self.is_alive()
        return self


def _server_tls(c, client_cert=None, trust=None):
    return ferry.TLS(cert=c.server[0], key=c.server[1], ca=trust, client_cert=client_cert)


def test_round_trip_and_peer_cert(certs):
    c = certs
    with _listen(_server_tls(c, "required", c.ca[0])) as lis:
        url = lis.url
        assert url.startswith("tls://127.0.0.1:")
        srv = Server(lis, echo=3)
        srv.start()
        # The client shows PEM text (not files): both forms are accepted.
        with open(c.client[0]) as f1, open(c.client[1]) as f2, open(c.ca[0]) as f3:
            tls = ferry.TLS(cert_pem=f1.read(), key_pem=f2.read(), ca_pem=f3.read())
        with ferry.open(url, tls=tls, timeout=T) as ch:
            for i, msg in enumerate((b"hello", b"x" * 100000, b"")):
                ch.send(msg, type=i + 1)
                m = ch.recv(timeout=T)
                assert (m.data, m.type) == (msg[::-1], i + 1)
            pc = ch.peer_cert()  # the server's
            assert pc.verified and pc.cn == "server"
            assert pc.sha256 == c.sha256(c.server)
            assert pc.sans == ("DNS:localhost", "IP:127.0.0.1")
            assert "CN=server" in pc.subject and "O=ferry tests" in pc.subject
            assert not pc.truncated
            srv.finish()
            assert srv.exc is None, srv.exc
            sc = srv.cert  # the client's, as the server saw it
            assert sc.verified and sc.cn == "alice" and sc.sha256 == c.sha256(c.client)
            assert sc.sans == ("DNS:alice.example", "email:alice@example.org")
            srv.ch.close()
            with pytest.raises(BrokenPipeError):
                ch.recv(timeout=T)
    a, b = ferry.pair()
    with a, b:
        with pytest.raises(ferry.Error) as ei:
            a.peer_cert()
        assert ei.value.errno == errno.EOPNOTSUPP


def test_optional_client_cert_without_one(certs):
    c = certs
    with _listen(_server_tls(c, "optional", c.ca[0])) as lis:
        srv = Server(lis)
        srv.start()
        with ferry.open(lis.url, tls=ferry.TLS(ca=c.ca[0], ktls=False), timeout=T):
            srv.finish()
            assert srv.exc is None, srv.exc
            assert srv.cert == ferry.PeerCert(False, bytes(32), "", "", (), False,
                                              srv.cert.ktls_tx, srv.cert.ktls_rx)
            srv.ch.close()


@pytest.mark.parametrize("case", ["untrusted_server", "wrong_host", "wrong_host_by_name",
                                  "expired_server", "no_client_cert", "rogue_client",
                                  "expired_client"])
def test_handshake_failures_exact_errno(certs, case):
    c = certs
    srv_id, trust, cc, cli_id, cli_trust, host = c.server, None, None, None, c.ca[0], None
    want_srv, want_cli = errno.EACCES, None
    if case == "untrusted_server":
        cli_trust, want_cli = c.other_ca[0], errno.EKEYREJECTED
    elif case == "wrong_host":
        srv_id, want_cli = c.wrong_host, errno.EREMCHG
    elif case == "wrong_host_by_name":
        host, want_cli = "other.example", errno.EREMCHG
    elif case == "expired_server":
        srv_id, want_cli = c.expired, errno.EKEYEXPIRED
    elif case == "no_client_cert":
        trust, cc, want_cli = c.ca[0], "required", errno.EACCES
    elif case == "rogue_client":
        trust, cc, cli_id = c.ca[0], "required", c.rogue
        want_srv, want_cli = errno.EKEYREJECTED, errno.EACCES
    elif case == "expired_client":
        trust, cc, cli_id = c.ca[0], "required", c.expired
        want_srv, want_cli = errno.EKEYEXPIRED, errno.EACCES
    stls = ferry.TLS(cert=srv_id[0], key=srv_id[1], ca=trust, client_cert=cc)
    ctls = ferry.TLS(cert=cli_id and cli_id[0], key=cli_id and cli_id[1], ca=cli_trust,
                     host=host)
    with _listen(stls) as lis:
        srv = Server(lis)
        srv.start()
        with pytest.raises(ferry.Error) as ei:
            ferry.open(lis.url, tls=ctls, timeout=T).close()
        srv.finish()
        assert ei.value.errno == want_cli, ei.value
        assert isinstance(srv.exc, ferry.Error) and srv.exc.errno == want_srv, srv.exc


def test_bad_options(certs):
    c = certs
    with pytest.raises(ValueError):
        ferry.TLS(client_cert="sometimes")
    # A listener without a certificate, or one with a key that is not its own.
    for tls in (ferry.TLS(), ferry.TLS(cert=c.server[0], key=c.client[1])):
        with pytest.raises(ferry.Error) as ei:
            _listen(tls).close()
        assert ei.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        _listen(ferry.TLS(cert=c.p("nope.pem"), key=c.server[1])).close()
