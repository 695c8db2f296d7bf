/* delayline.c - escp's WAN emulator: a userspace "wire" between two TUN devices.
 *
 * The test kernel has no sch_netem, so delay and loss cannot come from tc. This program
 * creates two L3 TUN devices (IFF_TUN|IFF_NO_PI) and carries every packet read from one
 * to the other, in each direction independently:
 *
 *   arrival t -> [loss? seeded PRNG] -> [tail-drop queue, queue_bytes]
 *             -> serialiser at rate (departure d = max(t, d_prev) + len*8/rate)
 *             -> propagation delay (written out at d + delay)
 *
 * Packets live in a fixed pool of equal slots (allocated and touched before "ready"), kept
 * per direction in a FIFO ring of slot indexes; delivery is FIFO because the departure
 * times are monotonic. Waiting is ppoll() on the two TUN fds, a timerfd armed (absolute,
 * CLOCK_MONOTONIC) for the earliest due packet, a deadline timerfd, a signalfd and,
 * optionally, stdin: no busy loop, no periodic wakeups when idle.
 *
 * Usage: delayline -a TUN_A -b TUN_B [-d delay_us] [-r rate_kbit] [-l loss_ppm_ab]
 *                  [-L loss_ppm_ba] [-q queue_kib] [-n slots] [-m mtu] [-s seed]
 *                  [-t max_seconds] [-g grain_us] [-w]
 *   delay is one way and applies both ways; rate 0 = unlimited; loss in parts per million.
 *   -w: exit when stdin reaches EOF (the parent died). -g: packets due within grain_us
 *   are written in the same wakeup (bounds the wakeup rate; default 20 us).
 * Output (stdout, one line each): "ready a=.. b=.. ..." once both devices exist; on
 * SIGUSR1 and at exit "stats a>b ..." and "stats b>a ..." then "end"; at exit "exit
 * reason=signal|deadline|stdin|error". Diagnostics go to stderr. Exit 0 unless setup fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  uint64_t due;   /* ns, CLOCK_MONOTONIC: when it leaves the far end of the wire */
  uint32_t len;
  uint32_t slot;  /* index into the shared pool */
} pkt;

typedef struct {
  const char *name;     /* "a>b" / "b>a" */
  int rfd, wfd;         /* read from rfd, write to wfd */
  uint32_t loss_ppm;
  uint64_t busy_until;  /* serialiser: departure time of the last accepted packet */
  pkt *fifo;            /* ring of nslots entries */
  uint32_t head, count;
  uint64_t rd_pkts, rd_bytes, tx_pkts, tx_bytes;
  uint64_t drop_loss, drop_queue, drop_full, drop_big, write_err, read_err;
} lane;

static uint8_t *pool;            /* nslots * slot_size bytes */
static uint32_t *free_stack, nfree, nslots, slot_size;
static uint64_t delay_ns, queue_bytes, grain_ns;
static double ns_per_byte;       /* 0 = unlimited rate */
static uint64_t rng;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: one state word, seeded from -s, reproducible loss patterns */
static uint64_t next_rand(void) {
  uint64_t z = (rng += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static int make_tun(const char *name, int mtu) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) { fprintf(stderr, "delayline: open /dev/net/tun: %s\n", strerror(errno)); return -1; }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (strlen(name) >= IFNAMSIZ) { fprintf(stderr, "delayline: name too long: %s\n", name); close(fd); return -1; }
  memcpy(ifr.ifr_name, name, strlen(name));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    fprintf(stderr, "delayline: TUNSETIFF %s: %s\n", name, strerror(errno));
    close(fd);
    return -1;
  }
  /* the MTU is set through an ordinary socket ioctl on the (still root-namespace) device */
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s >= 0) {
    ifr.ifr_mtu = mtu;
    if (ioctl(s, SIOCSIFMTU, &ifr) < 0) fprintf(stderr, "delayline: SIOCSIFMTU %s: %s\n", name, strerror(errno));
    close(s);
  }
  return fd;
}

static void print_stats(const lane *l) {
  printf("stats %s read=%" PRIu64 " read_bytes=%" PRIu64 " sent=%" PRIu64 " sent_bytes=%" PRIu64
         " drop_loss=%" PRIu64 " drop_queue=%" PRIu64 " drop_full=%" PRIu64 " drop_big=%" PRIu64
         " write_err=%" PRIu64 " read_err=%" PRIu64 " in_flight=%" PRIu32 "\n",
         l->name, l->rd_pkts, l->rd_bytes, l->tx_pkts, l->tx_bytes, l->drop_loss, l->drop_queue,
         l->drop_full, l->drop_big, l->write_err, l->read_err, l->count);
}

/* Reads everything the kernel has queued on the lane's input device. */
static void lane_read(lane *l) {
  for (;;) {
    if (nfree == 0) { /* pool exhausted: read into scratch only to count the drop */
      static uint8_t scratch[65536];
      ssize_t r = read(l->rfd, scratch, sizeof scratch);
      if (r < 0) { if (errno != EAGAIN && errno != EINTR) l->read_err++; return; }
      l->rd_pkts++; l->rd_bytes += (uint64_t)r; l->drop_full++;
      continue;
    }
    uint32_t slot = free_stack[nfree - 1];
    uint8_t *buf = pool + (size_t)slot * slot_size;
    ssize_t r = read(l->rfd, buf, slot_size);
    if (r < 0) { if (errno != EAGAIN && errno != EINTR) l->read_err++; return; }
    uint64_t now = mono_ns();
    l->rd_pkts++; l->rd_bytes += (uint64_t)r;
    if ((uint32_t)r >= slot_size) { l->drop_big++; continue; } /* possibly truncated */
    if (l->loss_ppm && next_rand() % 1000000u < l->loss_ppm) { l->drop_loss++; continue; }
    uint64_t start = l->busy_until > now ? l->busy_until : now;
    if (ns_per_byte > 0) {
      double backlog = (double)(start - now) / ns_per_byte; /* bytes still to serialise */
      if (backlog + (double)r > (double)queue_bytes) { l->drop_queue++; continue; }
    }
    uint64_t depart = start + (uint64_t)((double)r * ns_per_byte + 0.5);
    l->busy_until = depart;
    pkt *p = &l->fifo[(l->head + l->count) % nslots];
    p->due = depart + delay_ns; p->len = (uint32_t)r; p->slot = slot;
    l->count++; nfree--;
  }
}

/* Writes every packet due by now+grain; returns the due time of the next one, or 0. */
static uint64_t lane_deliver(lane *l) {
  uint64_t now = mono_ns();
  while (l->count) {
    pkt *p = &l->fifo[l->head];
    if (p->due > now + grain_ns) return p->due;
    ssize_t w = write(l->wfd, pool + (size_t)p->slot * slot_size, p->len);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) return now + grain_ns; /* retry soon */
    if (w < 0) l->write_err++;
    else { l->tx_pkts++; l->tx_bytes += p->len; }
    free_stack[nfree++] = p->slot;
    l->head = (l->head + 1) % nslots; l->count--;
  }
  return 0;
}

static int arm_at(int tfd, uint64_t at_ns) {
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value.tv_sec = (time_t)(at_ns / 1000000000u);
  its.it_value.tv_nsec = (long)(at_ns % 1000000000u);
  return timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL); /* 0 disarms */
}

static uint64_t num(const char *s, const char *what) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || end == s) { fprintf(stderr, "delayline: bad %s: %s\n", what, s); exit(2); }
  return (uint64_t)v;
}

int main(int argc, char **argv) {
  const char *na = NULL, *nb = NULL;
  uint64_t delay_us = 25000, rate_kbit = 1000000, loss_ab = 0, loss_ba = 0, queue_kib = 4096;
  uint64_t max_s = 600, mtu = 1500, slots_opt = 0, grain_us = 20, seed = 1;
  int watch_stdin = 0, opt;
  while ((opt = getopt(argc, argv, "a:b:d:r:l:L:q:n:m:s:t:g:w")) != -1) {
    switch (opt) {
    case 'a': na = optarg; break;
    case 'b': nb = optarg; break;
    case 'd': delay_us = num(optarg, "delay_us"); break;
    case 'r': rate_kbit = num(optarg, "rate_kbit"); break;
    case 'l': loss_ab = num(optarg, "loss_ppm"); break;
    case 'L': loss_ba = num(optarg, "loss_ppm"); break;
    case 'q': queue_kib = num(optarg, "queue_kib"); break;
    case 'n': slots_opt = num(optarg, "slots"); break;
    case 'm': mtu = num(optarg, "mtu"); break;
    case 's': seed = num(optarg, "seed"); break;
    case 't': max_s = num(optarg, "max_seconds"); break;
    case 'g': grain_us = num(optarg, "grain_us"); break;
    case 'w': watch_stdin = 1; break;
    default: fprintf(stderr, "usage: see the comment at the top of delayline.c\n"); return 2;
    }
  }
  if (!na || !nb || loss_ab > 1000000 || loss_ba > 1000000 || mtu < 576 || mtu > 65000 || max_s == 0) {
    fprintf(stderr, "delayline: need -a TUN_A -b TUN_B; loss <= 1000000 ppm; 576 <= mtu <= 65000; -t > 0\n");
    return 2;
  }
  delay_ns = delay_us * 1000u;
  grain_ns = grain_us * 1000u;
  ns_per_byte = rate_kbit ? 8e6 / (double)rate_kbit : 0;
  queue_bytes = queue_kib * 1024u;
  rng = seed;
  slot_size = (uint32_t)((mtu + 64 + 63) & ~(uint64_t)63);
  /* enough slots for a full pipe (rate*delay) plus the queue, in full-size packets, twice
   * over for the reverse lane and small packets; at least 4096 */
  uint64_t pipe = rate_kbit ? rate_kbit * 1000u / 8u * delay_us / 1000000u : 64u << 20;
  uint64_t want = slots_opt ? slots_opt : 2 * (pipe + queue_bytes) / mtu + 1024;
  if (want < 4096) want = 4096;
  if (want > (1u << 22)) want = 1u << 22;
  nslots = (uint32_t)want;

  pool = malloc((size_t)nslots * slot_size);
  free_stack = malloc(sizeof *free_stack * nslots);
  lane L[2];
  memset(L, 0, sizeof L);
  L[0].fifo = malloc(sizeof(pkt) * nslots);
  L[1].fifo = malloc(sizeof(pkt) * nslots);
  if (!pool || !free_stack || !L[0].fifo || !L[1].fifo) { fprintf(stderr, "delayline: out of memory\n"); return 1; }
  memset(pool, 0, (size_t)nslots * slot_size); /* fault the pages in before "ready" */
  for (uint32_t i = 0; i < nslots; i++) free_stack[i] = nslots - 1 - i;
  nfree = nslots;

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT); sigaddset(&mask, SIGTERM); sigaddset(&mask, SIGUSR1);
  sigaddset(&mask, SIGPIPE);
  if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) { perror("delayline: sigprocmask"); return 1; }
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  int wire = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  int limit = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (sfd < 0 || wire < 0 || limit < 0) { perror("delayline: signalfd/timerfd"); return 1; }
  if (arm_at(limit, mono_ns() + max_s * 1000000000u) < 0) { perror("delayline: timerfd_settime"); return 1; }

  int fa = make_tun(na, (int)mtu);
  int fb = fa < 0 ? -1 : make_tun(nb, (int)mtu);
  if (fa < 0 || fb < 0) return 1;
  L[0] = (lane){ .name = "a>b", .rfd = fa, .wfd = fb, .loss_ppm = (uint32_t)loss_ab, .fifo = L[0].fifo };
  L[1] = (lane){ .name = "b>a", .rfd = fb, .wfd = fa, .loss_ppm = (uint32_t)loss_ba, .fifo = L[1].fifo };

  printf("ready a=%s b=%s delay_us=%" PRIu64 " rate_kbit=%" PRIu64 " loss_ppm_ab=%" PRIu64
         " loss_ppm_ba=%" PRIu64 " queue_kib=%" PRIu64 " slots=%" PRIu32 " slot_bytes=%" PRIu32
         " seed=%" PRIu64 " max_s=%" PRIu64 "\n",
         na, nb, delay_us, rate_kbit, loss_ab, loss_ba, queue_kib, nslots, slot_size, seed, max_s);
  fflush(stdout);

  enum { P_A, P_B, P_WIRE, P_LIMIT, P_SIG, P_STDIN, P_N };
  struct pollfd p[P_N] = {
    { fa, POLLIN, 0 }, { fb, POLLIN, 0 }, { wire, POLLIN, 0 }, { limit, POLLIN, 0 },
    { sfd, POLLIN, 0 }, { watch_stdin ? 0 : -1, POLLIN, 0 },
  };
  const char *reason = NULL;
  uint64_t armed = 0;
  while (!reason) {
    uint64_t n0 = lane_deliver(&L[0]), n1 = lane_deliver(&L[1]);
    uint64_t next = !n0 ? n1 : !n1 ? n0 : (n0 < n1 ? n0 : n1);
    if (next != armed) {
      if (arm_at(wire, next) < 0) { perror("delayline: timerfd_settime"); reason = "error"; break; }
      armed = next;
    }
    int r = ppoll(p, P_N, NULL, NULL);
    if (r < 0) {
      if (errno == EINTR) continue;
      perror("delayline: ppoll"); reason = "error"; break;
    }
    if (p[P_WIRE].revents & POLLIN) {
      uint64_t ticks;
      if (read(wire, &ticks, sizeof ticks) < 0 && errno != EAGAIN) perror("delayline: timerfd read");
      armed = 0; /* expired: re-arm on the next round */
    }
    if (p[P_A].revents & POLLIN) lane_read(&L[0]);
    if (p[P_B].revents & POLLIN) lane_read(&L[1]);
    if ((p[P_A].revents | p[P_B].revents) & (POLLERR | POLLHUP | POLLNVAL)) {
      fprintf(stderr, "delayline: TUN device error/hangup\n"); reason = "error";
    }
    if (p[P_LIMIT].revents & POLLIN) reason = "deadline";
    if (p[P_STDIN].revents) {
      char c[256];
      ssize_t n = read(0, c, sizeof c);
      if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) reason = "stdin";
    }
    if (p[P_SIG].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGUSR1) {
          print_stats(&L[0]); print_stats(&L[1]); printf("end\n"); fflush(stdout);
        } else if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
          reason = "signal";
        }
      }
    }
  }
  print_stats(&L[0]); print_stats(&L[1]);
  printf("end\nexit reason=%s\n", reason);
  fflush(stdout);
  close(fa); close(fb); /* non-persistent TUN devices disappear with their fd */
  return 0;
}
