/* Closed-loop echo load generator for benchmarks/echo_pingpong.py.
 *
 * Usage: echo_load PORT SIZE CONNECTIONS WARMUP_S DURATION_S [lines]
 *
 * Opens CONNECTIONS TCP connections to 127.0.0.1:PORT (TCP_NODELAY), prints
 * "ready", waits for one line on stdin, then on every connection sends one
 * SIZE-byte message, reads the whole echo back, and repeats (one message in
 * flight per connection), driven by one epoll loop in one thread. Messages
 * completed during the WARMUP_S seconds after the start are not counted; the
 * run stops DURATION_S seconds later and prints
 * "messages N bytes B" (B = N * SIZE, the bytes echoed back in the window).
 * The first and the last echo of every connection are compared byte by byte
 * with what was sent. Exit status 1 on any error, with a message on stderr.
 * With "lines" the message is one text line: SIZE - 1 letters and "\n"
 * (for line echo servers, benchmarks/line_echo.py); otherwise its bytes are
 * pseudo-random.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

struct conn {
    int fd;
    size_t sent;      /* bytes of the current message written */
    size_t received;  /* bytes of the current echo read */
    int want_out;     /* EPOLLOUT currently registered */
    long messages;    /* echoes completed on this connection */
    unsigned char *buf;
};

static void die(const char *what) {
    perror(what);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void set_events(int ep, struct conn *c, int want_out) {
    if (c->want_out == want_out) return;
    struct epoll_event ev;
    ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
    c->want_out = want_out;
}

/* Write as much of the current message as the socket takes. */
static void pump_out(int ep, struct conn *c, const unsigned char *msg, size_t size) {
    while (c->sent < size) {
        ssize_t n = send(c->fd, msg + c->sent, size - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            die("send");
        }
        c->sent += (size_t)n;
    }
    set_events(ep, c, c->sent < size);
}

int main(int argc, char **argv) {
    if (argc != 6 && !(argc == 7 && strcmp(argv[6], "lines") == 0)) {
        fprintf(stderr, "usage: %s PORT SIZE CONNECTIONS WARMUP_S DURATION_S [lines]\n", argv[0]);
        return 2;
    }
    int lines = argc == 7;
    int port = atoi(argv[1]);
    size_t size = (size_t)strtoul(argv[2], NULL, 10);
    int nconn = atoi(argv[3]);
    double warmup = atof(argv[4]);
    double duration = atof(argv[5]);
    if (port <= 0 || port > 65535 || size == 0 || nconn <= 0 || warmup < 0 || duration <= 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }

    unsigned char *msg = malloc(size);
    if (!msg) die("malloc");
    unsigned int seed = 12345u;
    for (size_t i = 0; i < size; i++) {
        seed = seed * 1103515245u + 12345u;
        msg[i] = (unsigned char)(seed >> 16);
        if (lines) msg[i] = (unsigned char)('a' + msg[i] % 26);
    }
    if (lines) msg[size - 1] = '\n';

    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    struct conn *conns = calloc((size_t)nconn, sizeof *conns);
    if (!conns) die("calloc");
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->fd < 0) die("socket");
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
        int one = 1;
        if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) die("setsockopt");
        if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
        c->buf = malloc(size);
        if (!c->buf) die("malloc");
        struct epoll_event ev;
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    }
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) {
        fprintf(stderr, "no go line on stdin\n");
        return 1;
    }

    double start = now();
    double measure_from = start + warmup;
    double end = measure_from + duration;
    long counted = 0;
    for (int i = 0; i < nconn; i++) pump_out(ep, &conns[i], msg, size);

    struct epoll_event *events = calloc((size_t)nconn, sizeof *events);
    if (!events) die("calloc");
    for (;;) {
        int n = epoll_wait(ep, events, nconn, 50);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        double t = now();
        if (t >= end) break;
        for (int k = 0; k < n; k++) {
            struct conn *c = events[k].data.ptr;
            if (events[k].events & EPOLLOUT) pump_out(ep, c, msg, size);
            if (!(events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            for (;;) {
                ssize_t r = recv(c->fd, c->buf + c->received, size - c->received, 0);
                if (r < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                    if (errno == EINTR) continue;
                    die("recv");
                }
                if (r == 0) {
                    fprintf(stderr, "server closed a connection\n");
                    return 1;
                }
                c->received += (size_t)r;
                if (c->received > c->sent) {
                    fprintf(stderr, "echo ahead of what was sent\n");
                    return 1;
                }
                if (c->received < size) continue;
                if (c->messages == 0 && memcmp(c->buf, msg, size) != 0) {
                    fprintf(stderr, "echo mismatch\n");
                    return 1;
                }
                c->messages++;
                if (t >= measure_from) counted++;
                c->received = 0;
                c->sent = 0;
                pump_out(ep, c, msg, size);
                break;
            }
        }
    }
    /* Finish the message in flight on every connection and check the last echo. */
    for (int i = 0; i < nconn; i++) {
        struct conn *c = &conns[i];
        int flags = fcntl(c->fd, F_GETFL);
        fcntl(c->fd, F_SETFL, flags & ~O_NONBLOCK);
        while (c->sent < size) {
            ssize_t w = send(c->fd, msg + c->sent, size - c->sent, MSG_NOSIGNAL);
            if (w < 0) die("send");
            c->sent += (size_t)w;
        }
        while (c->received < size) {
            ssize_t r = recv(c->fd, c->buf + c->received, size - c->received, 0);
            if (r <= 0) {
                fprintf(stderr, "server closed a connection\n");
                return 1;
            }
            c->received += (size_t)r;
        }
        if (memcmp(c->buf, msg, size) != 0) {
            fprintf(stderr, "echo mismatch\n");
            return 1;
        }
        close(c->fd);
    }
    printf("messages %ld bytes %ld\n", counted, counted * (long)size);
    return 0;
}
