/* bench_relay.c — loopback throughput and CPU cost of the relay splicer (not a test; `make
 * bench-relay [PAIRS=5 MIB=1000]`). The relay runs in a child process, so its CPU time is
 * the child's rusage; this process plays both hosts with plain sockets: PAIRS host1
 * connections each send MIB MiB and half-close, the host2 ends read to EOF. Prints one line:
 *   relay: P pairs, G GB in S s = R GB/s; relay CPU C s (C/G s per GB); endpoints CPU E s */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "escp.h"

#include "check.h"

#define CHUNK (1 << 20) /* bytes per send/recv call at the endpoints */

static long long per_conn; /* bytes each host1 connection sends */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(const struct rusage *ru) {
  return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 + (double)ru->ru_stime.tv_sec +
         (double)ru->ru_stime.tv_usec / 1e6;
}

static int listener(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 128) == 0);
  CHECK(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
  *port = ntohs(a.sin_port);
  return fd;
}

static void *writer(void *p) {
  int fd = (int)(intptr_t)p;
  char *buf = calloc(1, CHUNK);
  CHECK(buf);
  for (long long left = per_conn; left > 0;) {
    ssize_t n = send(fd, buf, left < CHUNK ? (size_t)left : CHUNK, MSG_NOSIGNAL);
    CHECK(n > 0);
    left -= n;
  }
  CHECK(shutdown(fd, SHUT_WR) == 0);
  free(buf);
  return NULL;
}

static void *reader(void *p) {
  int fd = (int)(intptr_t)p;
  char *buf = malloc(CHUNK);
  CHECK(buf);
  long long got = 0;
  for (ssize_t n; (n = recv(fd, buf, CHUNK, 0)) > 0;) got += n;
  CHECK_EQ(got, per_conn);
  close(fd); /* the relay forwards this FIN to host1's end */
  free(buf);
  return NULL;
}

/* The child: connect, splice until every pair ended, exit 0 if all ended cleanly. */
static void relay_child(int p1, int p2, int pairs) {
  void *r = escp_relay_new(10000);
  if (!r || escp_relay_connect(r, "127.0.0.1", p1, "127.0.0.1", p2, pairs) != ESCP_OK ||
      escp_relay_start(r) != ESCP_OK)
    _exit(2);
  uint64_t c[ESCP_R_COUNT];
  struct timespec tick = {0, 1000000}; /* 1 ms: the bench polls like the JS timer would */
  do nanosleep(&tick, NULL);
  while (escp_relay_stats_read(r, c, ESCP_R_COUNT) == ESCP_R_COUNT && c[ESCP_R_PAIRS_UP] > 0);
  int clean = c[ESCP_R_PAIRS_DONE] == (uint64_t)pairs;
  escp_relay_free(r);
  _exit(clean ? 0 : 3);
}

int main(int argc, char **argv) {
  int pairs = argc > 1 ? atoi(argv[1]) : 5;
  per_conn = (argc > 2 ? atoll(argv[2]) : 1000) << 20;
  CHECK(pairs >= 1 && pairs <= 65 && per_conn > 0); /* nconns = T+1 <= 65 */
  int p1, p2, l1 = listener(&p1), l2 = listener(&p2);
  pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) relay_child(p1, p2, pairs);
  int a[65], b[65];
  pthread_t tw[65], tr[65];
  for (int k = 0; k < pairs; k++) a[k] = accept(l1, NULL, NULL);
  for (int k = 0; k < pairs; k++) b[k] = accept(l2, NULL, NULL);
  double t0 = now_s();
  for (int k = 0; k < pairs; k++) {
    CHECK(pthread_create(&tw[k], NULL, writer, (void *)(intptr_t)a[k]) == 0);
    CHECK(pthread_create(&tr[k], NULL, reader, (void *)(intptr_t)b[k]) == 0);
  }
  for (int k = 0; k < pairs; k++) pthread_join(tw[k], NULL), pthread_join(tr[k], NULL);
  double secs = now_s() - t0;
  for (int k = 0; k < pairs; k++) { /* host2's FIN crossed: EOF here, then close */
    char x;
    CHECK_EQ(recv(a[k], &x, 1, 0), 0);
    close(a[k]);
  }
  int status;
  CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0);
  struct rusage rc, rs;
  getrusage(RUSAGE_CHILDREN, &rc);
  getrusage(RUSAGE_SELF, &rs);
  double gb = (double)per_conn * pairs / 1e9;
  printf("relay: %d pairs, %.2f GB in %.2f s = %.2f GB/s; relay CPU %.2f s (%.2f s per GB); endpoints CPU %.2f s\n",
         pairs, gb, secs, gb / secs, cpu_s(&rc), cpu_s(&rc) / gb, cpu_s(&rs));
  return 0;
}
