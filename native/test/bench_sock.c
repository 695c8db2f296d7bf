/* bench_sock.c — what a plain send costs against MSG_ZEROCOPY on this machine's loopback
 * TCP (not a test; `make bench-sock [MIB=4096]`). One connection; the sending thread sends
 * MIB MiB in 1 MiB calls (escp's block size) from 8 rotating buffers, the receiving thread
 * reads it to EOF with MSG_WAITALL. With MSG_ZEROCOPY the sender reaps completions from the
 * socket's error queue and only reuses a buffer once the kernel says it is done with it.
 * Prints one line per mode:
 *   MODE: G GB in S s = R GB/s; sender CPU C s (C/G s/GB), receiver CPU D s; copied K of N
 * where "copied" counts the completions the kernel marked SO_EE_CODE_ZEROCOPY_COPIED (it
 * copied after all: always the case for a peer on the same host). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define CHUNK (1 << 20)
#define NBUF 8

static long long total;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double thread_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         (double)ru.ru_stime.tv_usec / 1e6;
}

typedef struct {
  int fd;
  double cpu;
} rx_arg;

static void *rx_main(void *p) {
  rx_arg *a = p;
  double c0 = thread_cpu_s();
  uint8_t *buf = aligned_alloc(4096, CHUNK);
  CHECK(buf != NULL);
  for (;;) {
    ssize_t r = recv(a->fd, buf, CHUNK, MSG_WAITALL);
    if (r <= 0) break;
  }
  free(buf);
  a->cpu = thread_cpu_s() - c0;
  return NULL;
}

/* Reap zerocopy completions: returns how many sends completed, adds copied ones to *copied. */
static long reap(int fd, long *copied) {
  long done = 0;
  for (;;) {
    char ctrl[128];
    struct msghdr m = {.msg_control = ctrl, .msg_controllen = sizeof ctrl};
    if (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      struct sock_extended_err *e = (struct sock_extended_err *)CMSG_DATA(c);
      if (e->ee_origin != SO_EE_ORIGIN_ZEROCOPY) continue;
      long n = (long)(e->ee_data - e->ee_info) + 1; /* completions ee_info..ee_data */
      done += n;
      if (e->ee_code & SO_EE_CODE_ZEROCOPY_COPIED) *copied += n;
    }
  }
  return done;
}

static void run(int zc) {
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  CHECK(l >= 0 && bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0);
  CHECK(getsockname(l, (struct sockaddr *)&a, &al) == 0);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) == 0);
  int r = accept(l, NULL, NULL);
  CHECK(r >= 0);
  close(l);
  if (zc) CHECK(setsockopt(s, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof one) == 0);
  rx_arg ra = {r, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, rx_main, &ra) == 0);
  uint8_t *bufs[NBUF];
  for (int i = 0; i < NBUF; i++) {
    bufs[i] = aligned_alloc(4096, CHUNK);
    CHECK(bufs[i] != NULL);
    memset(bufs[i], i + 1, CHUNK);
  }
  long sent = 0, completed = 0, copied = 0;
  double t0 = now_s(), c0 = thread_cpu_s();
  for (long long off = 0; off < total; off += CHUNK) {
    while (zc && sent - completed >= NBUF) { /* every buffer still owned by the kernel */
      struct pollfd p = {.fd = s, .events = 0};
      (void)poll(&p, 1, 1000); /* POLLERR: the error queue has completions */
      completed += reap(s, &copied);
    }
    uint8_t *b = bufs[sent % NBUF];
    size_t got = 0;
    while (got < CHUNK) {
      ssize_t w = send(s, b + got, CHUNK - got, zc ? MSG_ZEROCOPY : 0);
      CHECK(w > 0);
      got += (size_t)w;
    }
    sent++;
    if (zc) completed += reap(s, &copied);
  }
  shutdown(s, SHUT_WR);
  while (zc && completed < sent) {
    struct pollfd p = {.fd = s, .events = 0};
    (void)poll(&p, 1, 1000);
    completed += reap(s, &copied);
  }
  double cpu = thread_cpu_s() - c0;
  pthread_join(th, NULL);
  double dt = now_s() - t0, gb = (double)total / 1e9;
  printf("%-9s %.2f GB in %.2f s = %.2f GB/s; sender CPU %.2f s (%.3f s/GB), receiver CPU %.2f s; copied %ld of %ld\n",
         zc ? "zerocopy:" : "plain:", gb, dt, gb / dt, cpu, cpu / gb, ra.cpu, zc ? copied : 0, zc ? completed : 0);
  for (int i = 0; i < NBUF; i++) free(bufs[i]);
  close(s);
  close(r);
}

int main(int argc, char **argv) {
  total = (long long)(argc > 1 ? atoi(argv[1]) : 4096) << 20;
  for (int rep = 0; rep < 2; rep++) {
    run(0);
    run(1);
  }
  return 0;
}
