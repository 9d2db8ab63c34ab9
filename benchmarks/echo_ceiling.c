/* The ceiling for benchmarks/echo_pingpong.py: an echo server in C.
 *
 * Usage: echo_ceiling
 *
 * Listens on a free port of 127.0.0.1 and prints "port N". One thread, one
 * level-triggered epoll loop, non-blocking sockets, one 256 KiB buffer per
 * connection (the size asyncio reads per recv): read once, write everything
 * read back, and while a write would block, wait for the socket to drain
 * instead of reading more. No Python and no allocation per message, so what
 * it reaches is what the kernel, the loopback and the load client allow.
 *
 * Controlled like the Python servers of _echo_servers.py: each line "stats"
 * on stdin is answered with one JSON line of the process's CPU time (user +
 * system, seconds), minor page faults, peak RSS and current RSS (KiB); EOF on
 * stdin stops the server.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER_SIZE (256 * 1024)

struct conn {
    int fd;
    size_t offset; /* bytes of buf already written back */
    size_t length; /* bytes in buf; 0 while waiting to read */
    unsigned char buf[BUFFER_SIZE];
};

/* epoll data.ptr for the listening socket and for stdin. */
static char LISTENER, CONTROL;

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void watch(int ep, int op, int fd, unsigned events, void *ptr) {
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    if (epoll_ctl(ep, op, fd, &ev) < 0) die("epoll_ctl");
}

static void print_stats(void) {
    struct rusage ru;
    long size = 0, resident = 0;
    getrusage(RUSAGE_SELF, &ru);
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
        fclose(f);
    }
    printf("{\"cpu\": %.6f, \"minflt\": %ld, \"maxrss_kib\": %ld, \"rss_kib\": %ld}\n",
           (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
               (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6,
           ru.ru_minflt, ru.ru_maxrss, resident * (sysconf(_SC_PAGESIZE) / 1024));
    fflush(stdout);
}

/* Read whatever stdin has; answer each complete "stats" line. 0 at EOF. */
static int control(void) {
    static char line[256];
    static size_t used;
    ssize_t n = read(0, line + used, sizeof line - 1 - used);
    if (n <= 0) return 0;
    used += (size_t)n;
    char *nl;
    while ((nl = memchr(line, '\n', used)) != NULL) {
        size_t len = (size_t)(nl - line);
        if (len == 5 && memcmp(line, "stats", 5) == 0) print_stats();
        used -= len + 1;
        memmove(line, nl + 1, used);
    }
    if (used == sizeof line - 1) used = 0; /* a line too long to be a command */
    return 1;
}

static void drop(struct conn *c) {
    close(c->fd);
    free(c);
}

/* Readable or writable: finish the pending write, or read and echo once. */
static void serve(int ep, struct conn *c) {
    int was_waiting = c->length != 0;
    if (!was_waiting) {
        ssize_t n = recv(c->fd, c->buf, BUFFER_SIZE, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n <= 0) {
            drop(c);
            return;
        }
        c->length = (size_t)n;
        c->offset = 0;
    }
    while (c->offset < c->length) {
        ssize_t n = send(c->fd, c->buf + c->offset, c->length - c->offset, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) break;
            drop(c);
            return;
        }
        c->offset += (size_t)n;
    }
    if (c->offset < c->length) {
        if (!was_waiting) watch(ep, EPOLL_CTL_MOD, c->fd, EPOLLOUT, c);
        return;
    }
    c->length = 0;
    if (was_waiting) watch(ep, EPOLL_CTL_MOD, c->fd, EPOLLIN, c);
}

int main(void) {
    int one = 1;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (listener < 0) die("socket");
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t addrlen = sizeof addr;
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (listen(listener, 1024) < 0) die("listen");
    if (getsockname(listener, (struct sockaddr *)&addr, &addrlen) < 0) die("getsockname");
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    watch(ep, EPOLL_CTL_ADD, listener, EPOLLIN, &LISTENER);
    watch(ep, EPOLL_CTL_ADD, 0, EPOLLIN, &CONTROL);
    printf("port %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(ep, events, 64, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            void *ptr = events[i].data.ptr;
            if (ptr == &CONTROL) {
                if (!control()) return 0;
            } else if (ptr == &LISTENER) {
                int fd;
                while ((fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct conn *c = malloc(sizeof *c);
                    if (c == NULL) die("malloc");
                    c->fd = fd;
                    c->length = c->offset = 0;
                    watch(ep, EPOLL_CTL_ADD, fd, EPOLLIN, c);
                }
            } else {
                serve(ep, ptr);
            }
        }
    }
}
