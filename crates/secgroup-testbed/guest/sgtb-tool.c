/* sgtb-tool: the guest side of the test bed's QEMU guests.
 *
 * Built by the test bed at test time (`cc -static`) and copied into the
 * guests' initramfs; busybox has no UDP client, no long-lived connection
 * a test can poke, no bulk sender and no raw frame writer, this has them.
 * Every client exits 0 when the exchange completed, 1 when it did not
 * (timeout, reset, wrong echo), 2 on a usage or setup error; it says why
 * on stdout.
 *
 *   serve PORT...            TCP and UDP echo on every address (daemon);
 *                            UDP payloads are also logged, one a line,
 *                            to /tmp/udp.log as "PORT SOURCE PAYLOAD"
 *   tcp ADDR PORT MS         connect, send a line, read the echo
 *   udp ADDR PORT MS [TEXT]  send a datagram, read the echo
 *   hold NAME ADDR PORT      open a connection and keep it (daemon)
 *   say NAME MS              a line through NAME's connection, echoed?
 *   bulk ADDR PORT BYTES MS  send BYTES in large writes, all echoed back?
 *   raw IFACE HEX...         write each HEX frame as is onto IFACE
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(const char *what) {
    printf("failed: %s: %s\n", what, strerror(errno));
    return 1;
}

/* ADDR PORT as a sockaddr: IPv4, or IPv6 with an optional %IFACE (for
 * link-local addresses). No getaddrinfo: it wants NSS at run time. */
struct target {
    struct sockaddr_storage sa;
    socklen_t len;
};

static int resolve(const char *addr, const char *port, struct target *t) {
    char host[64];
    snprintf(host, sizeof host, "%s", addr);
    char *scope = strchr(host, '%');
    if (scope)
        *scope++ = 0;
    unsigned short p = htons((unsigned short)atoi(port));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&t->sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&t->sa;
    memset(t, 0, sizeof *t);
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET, v4->sin_port = p, t->len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6, v6->sin6_port = p, t->len = sizeof *v6;
        v6->sin6_scope_id = scope ? if_nametoindex(scope) : 0;
        return 0;
    }
    printf("bad address %s\n", addr);
    return -1;
}

/* Waits for `events` on fd until `deadline`; 1 ready, 0 timeout. */
static int wait_fd(int fd, short events, long long deadline) {
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return 0;
    }
}

/* A connected TCP socket within `ms`, or -1 (reason printed). */
static int tcp_connect(const char *addr, const char *port, int ms) {
    struct target t;
    if (resolve(addr, port, &t) != 0)
        return -2;
    int fd = socket(t.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return fail("socket"), -2;
    if (connect(fd, (struct sockaddr *)&t.sa, t.len) != 0 && errno != EINPROGRESS)
        return fail("connect"), close(fd), -1;
    if (!wait_fd(fd, POLLOUT, now_ms() + ms)) {
        printf("timeout: no answer to the SYN within %d ms\n", ms);
        close(fd);
        return -1;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        printf("failed: connect: %s\n", strerror(err));
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends `msg` and reads exactly its echo before `deadline`. */
static int exchange(int fd, const char *msg, long long deadline) {
    size_t n = strlen(msg), got = 0;
    char buf[512];
    if (send(fd, msg, n, MSG_NOSIGNAL) != (ssize_t)n)
        return fail("send");
    while (got < n) {
        if (!wait_fd(fd, POLLIN, deadline)) {
            printf("timeout: no echo\n");
            return 1;
        }
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0) {
            printf("failed: connection %s\n", r == 0 ? "closed" : strerror(errno));
            return 1;
        }
        got += (size_t)r;
    }
    if (memcmp(buf, msg, n) != 0) {
        printf("failed: wrong echo\n");
        return 1;
    }
    return 0;
}

static void daemonize(void) {
    if (fork() != 0)
        _exit(0);
    setsid();
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0), dup2(null, 1), dup2(null, 2);
}

static void echo_stream(int fd) {
    static char buf[65536];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0)
            _exit(0);
        for (ssize_t off = 0; off < r;) {
            ssize_t w = send(fd, buf + off, (size_t)(r - off), MSG_NOSIGNAL);
            if (w <= 0)
                _exit(0);
            off += w;
        }
    }
}

static int bound(int type, int port) {
    int fd = socket(AF_INET6, type, 0), off = 0, on = 1;
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((unsigned short)port)};
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        return -1;
    if (type == SOCK_STREAM && listen(fd, 64) != 0)
        return -1;
    return fd;
}

static int serve(int argc, char **argv) {
    enum { MAX = 32 };
    struct pollfd fds[2 * MAX];
    int ports[2 * MAX], n = 0;
    for (int i = 0; i < argc && i < MAX; i++) {
        int port = atoi(argv[i]);
        int t = bound(SOCK_STREAM, port), u = bound(SOCK_DGRAM, port);
        if (t < 0 || u < 0)
            return fail(argv[i]), 2;
        fds[n] = (struct pollfd){.fd = t, .events = POLLIN}, ports[n++] = -port;
        fds[n] = (struct pollfd){.fd = u, .events = POLLIN}, ports[n++] = port;
    }
    printf("serving\n");
    fflush(stdout);
    daemonize();
    signal(SIGCHLD, SIG_IGN);
    for (;;) {
        if (poll(fds, (nfds_t)n, -1) <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (!(fds[i].revents & POLLIN))
                continue;
            if (ports[i] < 0) {
                int c = accept(fds[i].fd, NULL, NULL);
                if (c >= 0 && fork() == 0)
                    echo_stream(c);
                if (c >= 0)
                    close(c);
                continue;
            }
            char buf[2048], host[INET6_ADDRSTRLEN] = "?";
            struct sockaddr_in6 from;
            socklen_t len = sizeof from;
            ssize_t r = recvfrom(fds[i].fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len);
            if (r < 0)
                continue;
            sendto(fds[i].fd, buf, (size_t)r, 0, (struct sockaddr *)&from, len);
            buf[r] = 0;
            buf[strcspn(buf, "\r\n")] = 0;
            inet_ntop(AF_INET6, &from.sin6_addr, host, sizeof host);
            FILE *log = fopen("/tmp/udp.log", "a");
            if (log) {
                const char *h = strncmp(host, "::ffff:", 7) == 0 ? host + 7 : host;
                fprintf(log, "%d %s %s\n", ports[i], h, buf);
                fclose(log);
            }
        }
    }
}

static int udp(const char *addr, const char *port, int ms, const char *msg) {
    struct target t;
    if (resolve(addr, port, &t) != 0)
        return 2;
    int fd = socket(t.sa.ss_family, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&t.sa, t.len) != 0)
        return fail("udp socket");
    return exchange(fd, msg, now_ms() + ms);
}

static void hold_path(const char *name, struct sockaddr_un *sa) {
    *sa = (struct sockaddr_un){.sun_family = AF_UNIX};
    snprintf(sa->sun_path, sizeof sa->sun_path, "/tmp/hold-%s", name);
}

/* The held connection answers `say`: drain what came late, one line
 * through the connection, "ok" or why not back to the caller. */
static int hold(const char *name, const char *addr, const char *port) {
    int fd = tcp_connect(addr, port, 5000);
    if (fd < 0)
        return 1;
    struct sockaddr_un sa;
    hold_path(name, &sa);
    unlink(sa.sun_path);
    int ctl = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(ctl, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ctl, 4) != 0)
        return fail(sa.sun_path), 2;
    printf("holding\n");
    fflush(stdout);
    daemonize();
    for (;;) {
        int c = accept(ctl, NULL, NULL);
        if (c < 0)
            continue;
        char req[32] = {0}, late[4096];
        recv(c, req, sizeof req - 1, 0);
        while (recv(fd, late, sizeof late, MSG_DONTWAIT) > 0) {
        }
        int saved = dup(1);
        dup2(c, 1);
        int rc = exchange(fd, "held\n", now_ms() + atoi(req));
        if (rc == 0)
            printf("ok\n");
        fflush(stdout);
        dup2(saved, 1);
        close(saved);
        close(c);
    }
}

static int say(const char *name, const char *ms) {
    struct sockaddr_un sa;
    hold_path(name, &sa);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&sa, sizeof sa) != 0)
        return fail(sa.sun_path), 2;
    send(c, ms, strlen(ms), 0);
    char buf[256];
    ssize_t r = recv(c, buf, sizeof buf - 1, MSG_WAITALL);
    buf[r > 0 ? r : 0] = 0;
    fputs(buf, stdout);
    return strncmp(buf, "ok", 2) == 0 ? 0 : 1;
}

/* Writes in 64 KiB chunks, so the stack hands the NIC TSO-size segments,
 * and checks every byte comes back in order. */
static int bulk(const char *addr, const char *port, long total, int ms) {
    int fd = tcp_connect(addr, port, ms);
    if (fd < 0)
        return 1;
    static unsigned char out[65536], in[65536];
    long sent = 0, got = 0;
    long long deadline = now_ms() + ms;
    while (got < total) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};
        long long left = deadline - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            printf("timeout: %ld of %ld bytes echoed\n", got, total);
            return 1;
        }
        if ((p.revents & POLLOUT) && sent < total) {
            size_t n = (size_t)(total - sent < (long)sizeof out ? total - sent : (long)sizeof out);
            for (size_t i = 0; i < n; i++)
                out[i] = (unsigned char)((sent + (long)i) % 251);
            ssize_t w = send(fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && errno != EAGAIN)
                return fail("send");
            if (w > 0)
                sent += w;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, in, sizeof in, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN)) {
                printf("failed: connection closed after %ld bytes\n", got);
                return 1;
            }
            for (ssize_t i = 0; i < r; i++)
                if (in[i] != (unsigned char)((got + i) % 251)) {
                    printf("failed: byte %ld differs\n", got + (long)i);
                    return 1;
                }
            if (r > 0)
                got += r;
        }
    }
    printf("ok: %ld bytes\n", got);
    return 0;
}

static int raw(const char *iface, int argc, char **argv) {
    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    struct sockaddr_ll sa = {.sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(iface)};
    if (fd < 0 || sa.sll_ifindex == 0)
        return fail(iface), 2;
    for (int i = 0; i < argc; i++) {
        unsigned char frame[9216];
        size_t n = strlen(argv[i]) / 2;
        if (n > sizeof frame)
            return printf("frame %d too long\n", i), 2;
        for (size_t j = 0; j < n; j++)
            sscanf(argv[i] + 2 * j, "%2hhx", &frame[j]);
        if (sendto(fd, frame, n, 0, (struct sockaddr *)&sa, sizeof sa) != (ssize_t)n)
            return fail("sendto"), 2;
    }
    printf("sent %d\n", argc);
    return 0;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(cmd, "serve") && argc > 2)
        return serve(argc - 2, argv + 2);
    if (!strcmp(cmd, "tcp") && argc == 5) {
        int fd = tcp_connect(argv[2], argv[3], atoi(argv[4]));
        if (fd < 0)
            return fd == -2 ? 2 : 1;
        int rc = exchange(fd, "sgtb\n", now_ms() + atoi(argv[4]));
        if (rc == 0)
            printf("ok\n");
        return rc;
    }
    if (!strcmp(cmd, "udp") && (argc == 5 || argc == 6)) {
        int rc = udp(argv[2], argv[3], atoi(argv[4]), argc == 6 ? argv[5] : "sgtb-udp");
        if (rc == 0)
            printf("ok\n");
        return rc;
    }
    if (!strcmp(cmd, "hold") && argc == 5)
        return hold(argv[2], argv[3], argv[4]);
    if (!strcmp(cmd, "say") && argc == 4)
        return say(argv[2], argv[3]);
    if (!strcmp(cmd, "bulk") && argc == 6)
        return bulk(argv[2], argv[3], atol(argv[4]), atoi(argv[5]));
    if (!strcmp(cmd, "raw") && argc > 3)
        return raw(argv[2], argc - 3, argv + 3);
    fprintf(stderr, "usage: sgtb-tool serve|tcp|udp|hold|say|bulk|raw ... (see the source)\n");
    return 2;
}
