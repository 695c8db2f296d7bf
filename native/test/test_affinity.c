/* test_affinity.c — escp_affinity_set (NUMA placement of the stream threads): its argument
 * checks and lifecycle, and that a started session's control and data threads, on both
 * sides, are allowed only the CPUs it was given (read back from /proc/self/task/N/status). */
#define _GNU_SOURCE
#include <dirent.h>
#include <sched.h>
#include "xfer.h" /* new_session, connect_thread, nap, next_ev */

/* The highest CPU this process may run on: CPU 1 on this 2-CPU machine. */
static int last_cpu(void) {
  cpu_set_t set;
  CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
  int last = -1;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &set)) last = c;
  CHECK(last >= 0);
  return last;
}

/* Threads named escp-ctl* / escp-tx* / escp-rx* (session.c names them right after
 * pthread_create, so a thread may be seen before it pinned itself): returns how many have
 * a Cpus_allowed_list of exactly want; last_seen keeps another list seen. */
static char last_seen[64];
static int stream_threads(const char *want) {
  DIR *d = opendir("/proc/self/task");
  CHECK(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue; /* the thread ended meanwhile */
    int ours = fgets(line, sizeof line, f) && (!strncmp(line, "escp-ctl", 8) || !strncmp(line, "escp-tx", 7) || !strncmp(line, "escp-rx", 7));
    fclose(f);
    if (!ours) continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
    if (!(f = fopen(path, "r"))) continue;
    while (fgets(line, sizeof line, f))
      if (!strncmp(line, "Cpus_allowed_list:", 18)) {
        char *v = line + 18;
        v += strspn(v, " \t");
        v[strcspn(v, "\n")] = 0;
        if (strcmp(v, want) == 0) n++;
        else snprintf(last_seen, sizeof last_seen, "%s", v);
      }
    fclose(f);
  }
  closedir(d);
  return n;
}

static void args(void) {
  uint8_t m[ESCP_AFFINITY_MAX + 1];
  memset(m, 0, sizeof m);
  void *h = escp_session_new(ESCP_ROLE_SENDER);
  CHECK(h);
  CHECK_EQ(escp_affinity_set(NULL, m, 1), ESCP_E_INVAL);
  CHECK_EQ(escp_affinity_set(h, m, -1), ESCP_E_INVAL);
  CHECK_EQ(escp_affinity_set(h, NULL, 1), ESCP_E_INVAL);
  m[0] = 1;
  CHECK_EQ(escp_affinity_set(h, m, ESCP_AFFINITY_MAX + 1), ESCP_E_INVAL); /* too long */
  m[0] = 0;
  CHECK_EQ(escp_affinity_set(h, m, ESCP_AFFINITY_MAX), ESCP_E_INVAL); /* no CPU at all */
  m[ESCP_AFFINITY_MAX - 1] = 0x80; /* CPU 1023 only: not on this machine */
  if (last_cpu() < 1023) {
    CHECK_EQ(escp_affinity_set(h, m, ESCP_AFFINITY_MAX), ESCP_E_INVAL);
    char d[256];
    CHECK(escp_last_error_detail(h, d, sizeof d) > 0 && strstr(d, "affinity"));
  }
  m[0] = 1; /* CPU 0 (and 1023, dropped if absent) */
  CHECK_EQ(escp_affinity_set(h, m, ESCP_AFFINITY_MAX), ESCP_OK);
  CHECK_EQ(escp_affinity_set(h, NULL, 0), ESCP_OK); /* no placement again */
  CHECK_EQ(escp_affinity_set(h, m, 1), ESCP_OK);
  escp_session_free(h);
  escp_session_free(NULL);
}

/* Both sessions of a loopback transfer pinned to one CPU; every stream thread keeps to it. */
static void pinned(void) {
  int cpu = last_cpu();
  char want[16];
  snprintf(want, sizeof want, "%d", cpu);
  uint8_t m[ESCP_AFFINITY_MAX] = {0};
  m[cpu / 8] = (uint8_t)(1u << (cpu % 8));
  uint8_t key[32], sid[16];
  for (int i = 0; i < 32; i++) key[i] = (uint8_t)rnd();
  for (int i = 0; i < 16; i++) sid[i] = (uint8_t)rnd();
  cfg c = {.name = "pinned", .addr = "127.0.0.1", .threads = 3, .direct = 0, .dummy = 1, .checksum = 1};
  void *rx = new_session(ESCP_ROLE_RECEIVER, &c, key, sid);
  void *tx = new_session(ESCP_ROLE_SENDER, &c, key, sid);
  CHECK_EQ(escp_param_set(rx, ESCP_P_VERBOSE, 1), ESCP_OK);
  CHECK_EQ(escp_affinity_set(rx, m, (int32_t)(cpu / 8 + 1)), ESCP_OK);
  CHECK_EQ(escp_affinity_set(tx, m, ESCP_AFFINITY_MAX), ESCP_OK);
  int port = escp_listen(rx, c.addr, 0, 1);
  CHECK(port > 0);
  CHECK_EQ(escp_affinity_set(rx, m, 1 + cpu / 8), ESCP_OK); /* still before start */
  CHECK_EQ(escp_session_start(rx), ESCP_OK);
  CHECK_EQ(escp_affinity_set(rx, m, 1 + cpu / 8), ESCP_E_STATE);
  conn_arg a = {tx, c.addr, port, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, connect_thread, &a) == 0);
  pthread_join(th, NULL);
  CHECK_EQ(a.rc, ESCP_OK);
  CHECK_EQ(escp_session_start(tx), ESCP_OK);
  CHECK_EQ(next_ev(rx).type, ESCP_EV_STREAMS_UP);
  int want_n = 2 * (c.threads + 1), n = 0;
  for (time_t t0 = time(NULL); (n = stream_threads(want)) < want_n;) {
    if (time(NULL) - t0 >= 10) fprintf(stderr, "%d of %d stream threads on CPU %s; another: %s\n", n, want_n, want, last_seen);
    CHECK(time(NULL) - t0 < 10);
    nap();
  }
  CHECK_EQ(n, want_n);
  escp_event ev;
  while (escp_event_poll(rx, &ev, 1) == 1) CHECK(ev.type != ESCP_EV_LOG); /* no pin failed */
  CHECK_EQ(escp_session_stop(tx), ESCP_OK);
  CHECK_EQ(escp_session_stop(rx), ESCP_OK);
  CHECK_EQ(escp_affinity_set(tx, m, 1 + cpu / 8), ESCP_E_STATE);
  CHECK_EQ(escp_session_join(tx), ESCP_OK);
  CHECK_EQ(escp_session_join(rx), ESCP_OK);
  escp_session_free(tx);
  escp_session_free(rx);
  fprintf(stderr, "-- %d stream threads pinned to CPU %s\n", want_n, want);
}

int main(void) {
  args();
  pinned();
  fprintf(stderr, "test_affinity: ok\n");
  return 0;
}
