// SPDX-License-Identifier: MIT
/*
 * named_echo — two unrelated processes find each other by name through ferryd.
 *
 * The server registers "org.example.echo" (policy: only our uid may see and connect)
 * and echoes; the client connects by name, learns the server's pid from the kernel's
 * word (ferry_chan_peer), sends three messages and checks the echoes. ferryd is started
 * on first use when none runs. Run without arguments it plays both parts (fork), on a
 * private ferryd socket unless FERRY_BROKER is set; `named_echo server` and
 * `named_echo client` play one part each, in two terminals.
 * Exits 0 only when every echo came back right.
 */
#define _GNU_SOURCE
#include <ferry/ferry.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NAME "org.example.echo"
#define SEC  1000000000LL

static int server(int rounds, int ready_fd)
{
    ferry_listener *l;
    int rc = ferry_register(NAME, NULL, NULL, &l, 5 * SEC);
    if (rc < 0) {
        fprintf(stderr, "server: register %s: %s\n", NAME, ferry_strerror(rc));
        return 1;
    }
    printf("server %d: serving %s\n", (int)getpid(), NAME);
    fflush(stdout);
    if (ready_fd >= 0) close(ready_fd); /* the client may come now */
    for (int i = 0; rounds == 0 || i < rounds; i++) {
        ferry_chan *ch;
        if ((rc = ferry_accept(l, &ch, FERRY_FOREVER)) < 0) break;
        ferry_cred who;
        ferry_chan_peer(ch, &who);
        printf("server: client pid %d uid %d\n", (int)who.pid, (int)who.uid);
        char buf[256];
        ssize_t n;
        while ((n = ferry_recv(ch, buf, sizeof buf, 10 * SEC)) >= 0)
            if (ferry_send(ch, buf, (size_t)n, SEC) < 0) break;
        ferry_chan_close(ch);
    }
    ferry_listener_close(l);
    return rc < 0 ? 1 : 0;
}

static int client(void)
{
    ferry_chan *ch;
    int rc = ferry_connect(NAME, FERRY_KIND_SHM, NULL, &ch, 5 * SEC);
    if (rc < 0) {
        fprintf(stderr, "client: connect %s: %s\n", NAME, ferry_strerror(rc));
        return 1;
    }
    ferry_cred srv;
    ferry_chan_peer(ch, &srv);
    printf("client: connected to %s, served by pid %d\n", NAME, (int)srv.pid);
    const char *words[] = {"one", "two", "three"};
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        char buf[16];
        size_t len = strlen(words[i]);
        ssize_t n =
            ferry_send(ch, words[i], len, SEC) < 0 ? -1 : ferry_recv(ch, buf, sizeof buf, 5 * SEC);
        bad |= n != (ssize_t)len || memcmp(buf, words[i], len) != 0;
        printf("client: sent \"%s\", got %s\n", words[i], bad ? "a wrong echo" : "it back");
    }
    ferry_chan_close(ch);
    return bad;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0); /* the two parts' lines in order */
    if (argc > 1 && strcmp(argv[1], "server") == 0) return server(0, -1);
    if (argc > 1 && strcmp(argv[1], "client") == 0) return client();
    char dir[] = "/tmp/ferry-example-XXXXXX", sock[64] = "";
    if (!getenv("FERRY_BROKER")) { /* a private ferryd, so as not to meet anyone else's */
        if (!mkdtemp(dir)) return 1;
        snprintf(sock, sizeof sock, "%s/ferryd.sock", dir);
        setenv("FERRY_BROKER", sock, 1);
    }
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0)
        return 1; /* CLOEXEC: ferryd, started meanwhile, must not hold it */
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        _exit(server(1, ready[1]));
    }
    close(ready[1]);
    char c;
    if (read(ready[0], &c, 1) < 0) return 1; /* EOF: registered (or failed) */
    close(ready[0]);
    int rc = client();
    int st = 0;
    waitpid(pid, &st, 0);
    if (sock[0]) { /* stop the ferryd this run started: its pid is in the lock file */
        char lock[80], buf[32] = "";
        snprintf(lock, sizeof lock, "%s.lock", sock);
        FILE *f = fopen(lock, "re");
        if (f && fgets(buf, sizeof buf, f) && atoi(buf) > 0) kill(atoi(buf), SIGTERM);
        if (f) fclose(f);
        for (int i = 0; i < 200 && access(sock, F_OK) == 0; i++) usleep(5000);
        unlink(lock);
        rmdir(dir);
    }
    return rc || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
}
